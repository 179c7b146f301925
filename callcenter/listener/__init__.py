"""The listener: AMI events in, journal and call log out."""
