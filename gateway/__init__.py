"""The tell-us-once data-exchange gateway: URSSAF's reference data, shared with public partners."""
