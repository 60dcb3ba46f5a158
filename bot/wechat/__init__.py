"""The WeChat edge: inbound parsing, passive replies, crypto, the outbound gateway and its token."""
