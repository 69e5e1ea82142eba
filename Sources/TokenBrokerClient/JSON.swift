// The client's answers are read with the shared Foundation-free reader; importing the
// client is enough to use it.
@_exported import TokenBrokerJSON
