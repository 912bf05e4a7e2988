"""OpenStack Freezer Backup and Restore API service."""
