// The JSON reader and writer live in their own Foundation-free module, shared with the
// client and the server; code that imports the core keeps seeing `JSONWriter` and
// `JSONValue` without importing it too.
@_exported import TokenBrokerJSON
