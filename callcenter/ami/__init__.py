"""The AMI side of the listener: a hardened panoramisk connection and the CEL event parser."""
