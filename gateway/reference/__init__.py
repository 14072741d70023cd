"""The reference store: what URSSAF holds about self-employed people, and how it is loaded."""
