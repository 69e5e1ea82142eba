import Foundation

/// A throwaway self-signed certificate, made with openssl(1): for 127.0.0.1 unless other
/// subject alternative names are given (`DNS:localhost`).
package struct TestCertificate: Sendable {
  package var certificatePath: String
  package var keyPath: String

  package static func make(names: String = "IP:127.0.0.1") async throws -> TestCertificate {
    let dir = try TempDirectory.make("tb-tls")
    let cert = TestCertificate(certificatePath: dir + "/cert.pem", keyPath: dir + "/key.pem")
    let r = try await ProcessRunner.run([
      "/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj", "/CN=token-broker test", "-addext", "subjectAltName=\(names)", "-days", "2",
      "-keyout", cert.keyPath, "-out", cert.certificatePath,
    ])
    guard r.status == 0 else { throw SetupError("openssl failed: \(r.stderr)") }
    return cert
  }
}
