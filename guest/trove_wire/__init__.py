"""The wire protocol shared by the control plane and the guest agent.

It lives beside the guest so that the guest installs alone (pika only); the control
plane's bus (`trove_svc.bus`) builds on it, so there is one envelope and one way to
talk to RabbitMQ on both sides.
"""
