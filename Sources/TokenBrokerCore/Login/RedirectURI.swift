/// A provider's `redirect_uri`: where the browser is sent back with the code. A loopback
/// `http` URI without a port takes the port `tokenctl login` listens on (RFC 8252 section 7.3);
/// any other URI is used exactly as configured (the browser's address is pasted back).
package struct RedirectURI: Sendable, Equatable, CustomStringConvertible {
  /// The URI cut into its parts, as every upstream endpoint's URL is.
  package var url: EndpointURL
  package var scheme: String { url.scheme }
  package var host: String { url.host }
  package var port: Int? {
    get { url.port }
    set { url.port = newValue }
  }
  /// Path and query, starting with `/` (just `/` when the URI has none).
  package var rest: String { url.rest }

  package typealias Problem = EndpointURL.Problem

  /// Parses an absolute `http`/`https` URI without a fragment or user info; `http` only
  /// to a loopback host.
  package static func parse(_ text: String) -> Result<RedirectURI, Problem> {
    EndpointURL.parse(text)
      .map { RedirectURI(url: $0) }
      .mapError { Problem(message: $0.message.replacing("oauth/token", with: "callback")) }
  }

  /// `http` to a loopback address: tokenctl can listen for the browser's return.
  package var isLoopback: Bool { scheme == "http" && ConfigReader.isLoopback(host) }

  /// The path without the query, compared when the browser comes back.
  package var path: Substring { rest.prefix { $0 != "?" } }

  package var description: String { url.description }

  /// Whether a client may use `given` for a login of a provider configured with `self`:
  /// the same URI, or for a port-less loopback URI the same one with any port.
  package func admits(_ given: RedirectURI) -> Bool {
    if given == self { return true }
    guard isLoopback, port == nil, given.port != nil else { return false }
    var same = given
    same.port = nil
    return same == self
  }
}
