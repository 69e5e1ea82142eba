print("token-broker-bench: not yet")
