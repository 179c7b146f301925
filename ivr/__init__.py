"""The hotline IVR: a FastAGI server (pyst2 ``AGI`` over each connection) and its call flows."""
