import TokenBrokerTOML

/// `[broker]`.
extension ConfigReader {
  static let brokerKeys = [
    "socket", "socket_group", "state_dir", "refresh_at", "refresh_jitter", "min_valid", "request_timeout",
    "scope_idle_timeout", "admins", "log_level", "log_target", "https_proxy", "no_proxy", "https_proxy_user",
    "https_proxy_password",
  ]

  /// A Unix socket path holds at most this many bytes (sun_path less its NUL).
  static let maxSocketPathBytes = 107

  mutating func parseBroker(_ table: TOMLTable) -> BrokerSettings {
    let base = ["broker"]
    var settings = BrokerSettings()
    checkKeys(table, at: base, known: Self.brokerKeys)

    if let value = table["socket"], let socket = absolutePath(value, at: base + ["socket"]) {
      let bytes = socket.utf8.count
      if bytes > Self.maxSocketPathBytes {
        report(
          base + ["socket"],
          "path is \(bytes) bytes, but a Unix socket path holds at most \(Self.maxSocketPathBytes); "
            + "choose a shorter path")
      } else {
        settings.socket = socket
      }
    }
    if let value = table["socket_group"], let group = string(value, at: base + ["socket_group"]) {
      settings.socketGroup = group
    }
    if let value = table["state_dir"], let dir = absolutePath(value, at: base + ["state_dir"]) {
      settings.stateDir = dir
    }

    var refreshAtValid = true
    if let value = table["refresh_at"] {
      refreshAtValid = false
      if let n = number(value, at: base + ["refresh_at"]) {
        if n > 0, n < 1 {
          settings.refreshAt = n
          refreshAtValid = true
        } else {
          report(base + ["refresh_at"], "must be between 0 and 1 (both excluded), found \(Self.format(n))")
        }
      }
    }
    var jitterValid = true
    if let value = table["refresh_jitter"] {
      jitterValid = false
      if let n = number(value, at: base + ["refresh_jitter"]) {
        if n >= 0, n < 0.5 {
          settings.refreshJitter = n
          jitterValid = true
        } else {
          report(
            base + ["refresh_jitter"], "must be at least 0 and less than 0.5, found \(Self.format(n))")
        }
      }
    }
    if refreshAtValid, jitterValid {
      let at = settings.refreshAt
      let jitter = settings.refreshJitter
      if !(at + jitter < 1 && at - jitter > 0) {
        let key = base + [table["refresh_jitter"] != nil ? "refresh_jitter" : "refresh_at"]
        report(
          key,
          "refresh_at ± refresh_jitter must stay between 0 and 1 (both excluded), "
            + "found \(Self.format(at)) ± \(Self.format(jitter))")
      }
    }

    if let value = table["min_valid"], let n = minValid(value, at: base + ["min_valid"]) {
      settings.minValid = n
    }
    if let value = table["request_timeout"], let n = number(value, at: base + ["request_timeout"]) {
      if n > 0, n <= 300 {
        settings.requestTimeout = n
      } else {
        report(
          base + ["request_timeout"],
          "must be more than 0 and at most 300 seconds, found \(Self.format(n))")
      }
    }
    if let value = table["scope_idle_timeout"], let n = number(value, at: base + ["scope_idle_timeout"]) {
      if n > 0, n <= 2_592_000 {
        settings.scopeIdleTimeout = n
      } else {
        report(
          base + ["scope_idle_timeout"],
          "must be more than 0 and at most 2592000 seconds (30 days), found \(Self.format(n))")
      }
    }
    if let value = table["admins"], let admins = principals(value, at: base + ["admins"]) {
      settings.admins = admins
    }
    if let value = table["log_level"],
      let level = choice(value, at: base + ["log_level"], what: "log level", as: LogLevel.self)
    {
      settings.logLevel = level
    }
    if let value = table["log_target"],
      let target = choice(value, at: base + ["log_target"], what: "log target", as: LogTarget.self)
    {
      settings.logTarget = target
    }
    if let value = table["https_proxy"], let text = string(value, at: base + ["https_proxy"]) {
      switch UpstreamProxy.parse(text) {
      case .success(let proxy): settings.httpsProxy = proxy
      case .failure(let problem): report(base + ["https_proxy"], problem.message)
      }
    }
    if let value = table["no_proxy"], let hosts = noProxyList(value, at: base + ["no_proxy"]) {
      settings.noProxy = hosts
    }
    parseProxyCredential(table, into: &settings)
    return settings
  }

  /// `https_proxy_user` and `https_proxy_password`: both or neither, and only with `https_proxy`.
  private mutating func parseProxyCredential(_ table: TOMLTable, into settings: inout BrokerSettings) {
    let base = ["broker"]
    if let value = table["https_proxy_user"], let user = string(value, at: base + ["https_proxy_user"]) {
      if let problem = ProxyCredential.checkUser(user) {
        report(base + ["https_proxy_user"], problem)
      } else {
        settings.httpsProxyUser = user
      }
    }
    if let value = table["https_proxy_password"] {
      settings.httpsProxyPassword = secret(value, at: base + ["https_proxy_password"])
    }
    for (key, other) in [
      ("https_proxy_user", "https_proxy_password"), ("https_proxy_password", "https_proxy_user"),
    ]
    where table[key] != nil {
      if table["https_proxy"] == nil {
        report(base + [key], "has no effect without https_proxy; set https_proxy or remove \(key)")
      } else if table[other] == nil {
        report(base + [key], "needs \(other) too (the proxy is sent both, as Basic authentication)")
      }
    }
  }

  /// `no_proxy`: host names, domains (`example.com`, `.example.com`) or IP addresses.
  private mutating func noProxyList(_ value: TOMLValue, at key: [String]) -> [String]? {
    guard
      let (elements, _) = stringElements(
        value, at: key, expected: "an array of host names", element: "a host name")
    else { return nil }
    var hosts: [String] = []
    for (index, host, line) in elements {
      let bare = host.hasPrefix(".") ? String(host.dropFirst()) : host
      let allowed = bare.unicodeScalars.allSatisfy {
        ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0)
          || "-.:[]".unicodeScalars.contains($0)
      }
      guard !bare.isEmpty, allowed else {
        report(
          key, line: line,
          "entry \(index + 1): \(Self.quote(host)) is not a host name, domain or IP address (no scheme, port, path or wildcard)"
        )
        continue
      }
      hosts.append(host)
    }
    return hosts
  }
}

extension ConfigReader {
  /// `min_valid`, in `[broker]` or a provider: seconds between 0 and 86400.
  mutating func minValid(_ value: TOMLValue, at key: [String]) -> Double? {
    guard let n = number(value, at: key) else { return nil }
    guard n >= 0, n <= 86400 else {
      report(key, "must be between 0 and 86400 seconds, found \(Self.format(n))")
      return nil
    }
    return n
  }
}
