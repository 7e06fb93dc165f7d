"""Alert model, lifecycle and notifiers (land with the alerts issue)."""
