import Foundation

/// A throwaway self-signed certificate for 127.0.0.1, made with openssl(1).
package struct TestCertificate: Sendable {
  package var certificatePath: String
  package var keyPath: String

  package static func make() async throws -> TestCertificate {
    let dir = try TempDirectory.make("tb-tls")
    let cert = TestCertificate(certificatePath: dir + "/cert.pem", keyPath: dir + "/key.pem")
    let r = try await ProcessRunner.run([
      "/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
      "-keyout", cert.keyPath, "-out", cert.certificatePath,
    ])
    guard r.status == 0 else { throw SetupError("openssl failed: \(r.stderr)") }
    return cert
  }
}
