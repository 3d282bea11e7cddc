"""The notification centre: what happened in a conversation that a person should know of."""
