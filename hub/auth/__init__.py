"""Sign-in through the hub: identity providers, the hub's tokens, refresh and sign-out."""
