"""The wire contract that the gateway and the services share: schemas, events, errors, words."""
