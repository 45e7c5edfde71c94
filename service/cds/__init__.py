"""CDS Hooks 2.0 front door (patient-view): discovery and cards on the same core."""
