"""Pure protocol rules: parsed values in, parsed values or ``OAuthError`` out, no I/O."""
