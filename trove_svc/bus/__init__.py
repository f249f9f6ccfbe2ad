"""The control plane's side of the message bus (RabbitMQ through `trove_wire`)."""
