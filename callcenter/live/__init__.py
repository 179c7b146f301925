"""The live board: calls in the voice menu, waiting in the queue and in conversation, and each operator's state,
kept from AMI events by the API process and pushed to supervisors' browsers."""
