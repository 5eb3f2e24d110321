"""The nameko and RabbitMQ plumbing every service stands on."""
