"""The task manager: consumes the taskmanager queue and runs one flow per operation."""
