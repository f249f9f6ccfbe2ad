"""The REST API: Trove's v1.0 wire contract on Falcon."""
