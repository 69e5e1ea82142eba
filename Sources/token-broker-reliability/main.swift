print("token-broker-reliability: not yet")
