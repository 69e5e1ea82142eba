import TokenBrokerFuzzTargets
print("token-broker-fuzz: not yet")
