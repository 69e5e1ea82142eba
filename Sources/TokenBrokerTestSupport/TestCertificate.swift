import Foundation

/// A throwaway self-signed certificate for 127.0.0.1, made with openssl(1).
public struct TestCertificate: Sendable {
  public var certificatePath: String
  public var keyPath: String

  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  public static func make() async throws -> TestCertificate {
    let dir = try makeTempDir("tb-tls")
    let cert = TestCertificate(certificatePath: dir + "/cert.pem", keyPath: dir + "/key.pem")
    let r = try await ProcessRunner.run([
      "/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
      "-keyout", cert.keyPath, "-out", cert.certificatePath,
    ])
    guard r.status == 0 else { throw Failure(description: "openssl failed: \(r.stderr)") }
    return cert
  }
}
