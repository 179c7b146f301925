"""Cases beyond the store and the pages: the Open311 API (more of the cases feature may move here)."""
