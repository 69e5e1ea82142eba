import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import TokenBrokerCore

/// The broker's metrics (swift-metrics API over a Prometheus registry that is
/// rendered on `GET /metrics`; no global bootstrap, so tests get their own).
package final class BrokerMetrics: Sendable {
  package let registry: PrometheusCollectorRegistry
  let factory: PrometheusMetricsFactory

  private struct Cache {
    var counters: [String: CoreMetrics.Counter] = [:]
    var timers: [String: CoreMetrics.Timer] = [:]
    var gauges: [String: CoreMetrics.Gauge] = [:]
  }
  private let cache = NIOLockedValueBox(Cache())

  /// Request latency buckets (seconds): the fast path answers in tens of µs.
  static let latencyBuckets: [Duration] = [
    .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
    .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10),
  ]

  package init() {
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.defaultDurationHistogramBuckets = Self.latencyBuckets
    self.registry = registry
    self.factory = factory
  }

  /// One metric object per label and dimensions, made once and reused (the
  /// request path must not build handlers).
  private func cached<M>(
    _ path: WritableKeyPath<Cache, [String: M]>, _ label: String, _ dimensions: [(String, String)],
    make: () -> M
  ) -> M {
    let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
    return cache.withLockedValue { c in
      if let existing = c[keyPath: path][key] { return existing }
      let made = make()
      c[keyPath: path][key] = made
      return made
    }
  }

  private func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
    cached(\.counters, label, dimensions) {
      CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
    }
  }

  private func gauge(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Gauge {
    cached(\.gauges, label, dimensions) {
      CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: factory)
    }
  }

  private func timer(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Timer {
    cached(\.timers, label, dimensions) {
      CoreMetrics.Timer(label: label, dimensions: dimensions, factory: factory)
    }
  }

  /// A successful upstream token fetch.
  package func refreshed(provider: String) {
    counter("token_broker_refreshes_total", [("provider", provider)]).increment()
  }

  /// A failed upstream token fetch, by classified reason.
  package func refreshFailed(provider: String, reason: FailureKind) {
    counter("token_broker_refresh_failures_total", [("provider", provider), ("reason", reason.rawValue)])
      .increment()
  }

  /// One answered socket request.
  package func request(endpoint: String, status: Int, nanoseconds: Int64) {
    recorder(endpoint: endpoint, status: status).record(nanoseconds: nanoseconds)
  }

  /// The request counter and latency timer of one endpoint and status, looked up once:
  /// the socket's fast path keeps one and records without a lookup.
  package struct RequestRecorder: Sendable {
    let count: CoreMetrics.Counter
    let duration: CoreMetrics.Timer

    package func record(nanoseconds: Int64) {
      count.increment()
      duration.recordNanoseconds(nanoseconds)
    }
  }

  package func recorder(endpoint: String, status: Int) -> RequestRecorder {
    RequestRecorder(
      count: counter("token_broker_requests_total", [("endpoint", endpoint), ("status", String(status))]),
      duration: timer("token_broker_request_duration_seconds", [("endpoint", endpoint)]))
  }

  /// Sets the per-provider gauges from current statuses (called at scrape time); the gauges
  /// of a provider that a reload removed are dropped, not left at their last value.
  package func update(_ statuses: [ProviderStatus], now: Double) {
    let current = Set(statuses.map { "|provider=\($0.name)" })
    let stale = cache.withLockedValue { c -> [CoreMetrics.Gauge] in
      let gone = c.gauges.keys.filter { key in
        guard let at = key.firstRange(of: "|provider=") else { return false }
        return !current.contains(String(key[at.lowerBound...]))
      }
      return gone.compactMap { c.gauges.removeValue(forKey: $0) }
    }
    for gauge in stale { gauge.destroy() }
    for s in statuses {
      let dims = [("provider", s.name)]
      gauge("token_broker_token_expires_in_seconds", dims).record(Double(s.expiresIn ?? 0))
      gauge("token_broker_token_age_seconds", dims).record(s.lastRefresh.map { now - $0 } ?? 0)
      gauge("token_broker_provider_up", dims).record(s.state == .ok || s.state == .degraded ? 1 : 0)
    }
  }

  /// The fleet's gauges (README "Fleet"), set at scrape time from the member's counters:
  /// store health, claims won and lost, fenced writes, announcements received, polls made.
  package func update(fleet: FleetMember) {
    let c = fleet.counters
    gauge("token_broker_fleet_store_up", []).record(fleet.health == .ok ? 1 : 0)
    gauge("token_broker_fleet_claims_won", []).record(Double(c.claimsWon))
    gauge("token_broker_fleet_claims_lost", []).record(Double(c.claimsLost))
    gauge("token_broker_fleet_fenced_writes", []).record(Double(c.fenced))
    gauge("token_broker_fleet_notifications", []).record(Double(c.notifications))
    gauge("token_broker_fleet_polls", []).record(Double(c.polls))
  }

  /// Prometheus text exposition.
  package func render() -> [UInt8] {
    registry.emitToBuffer()
  }
}
