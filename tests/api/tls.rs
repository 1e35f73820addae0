//! HTTPS: a certificate made in the test, HTTP/2 and HTTP/1.1 chosen by ALPN, HSTS, and a
//! certificate swap on SIGHUP that keeps open connections and survives a broken file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::durability::ServerProcess;

/// A self-signed certificate for `localhost`, written to `dir` as `cert.pem`/`key.pem`.
fn write_certificate(dir: &Path) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).unwrap();
    made.cert.der().clone()
}

/// A TLS connection offering `alpn`, trusting `trusted` only.
async fn connect(
    addr: &str,
    trusted: &[&CertificateDer<'static>],
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

/// Sends `GET path` on an HTTP/2 connection; returns the status, the HSTS header and the body.
async fn h2_get(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    path: &str,
) -> (u16, Option<String>, String) {
    let request = hyper::Request::get(format!("https://localhost{path}"))
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let hsts = response
        .headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, hsts, String::from_utf8_lossy(&body).into_owned())
}

async fn h2(stream: TlsStream<TcpStream>) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

#[tokio::test]
async fn https_speaks_h2_and_http11_by_alpn_and_reloads_its_certificate_on_sighup() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let first = write_certificate(certs.path());
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let server = ServerProcess::start_with(
        data.path(),
        &[
            ("STOREFRONT__SERVER__TLS_CERT", cert.to_str().unwrap()),
            ("STOREFRONT__SERVER__TLS_KEY", key.to_str().unwrap()),
        ],
    );
    let addr = server.base.trim_start_matches("http://").to_owned();

    // HTTP/2 by ALPN, with HSTS.
    let stream = connect(&addr, &[&first], &[b"h2", b"http/1.1"]).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(presented(&stream), first);
    let mut kept = h2(stream).await;
    let (status, hsts, body) = h2_get(&mut kept, "/api/v1/categories").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(hsts.as_deref(), Some("max-age=31536000"));

    // HTTP/1.1 by ALPN.
    let stream = connect(&addr, &[&first], &[b"http/1.1"]).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            hyper::Request::get("/healthz")
                .header("host", "localhost")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_11);
    assert!(response.headers().contains_key("strict-transport-security"));

    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    // A new certificate in the same files, then SIGHUP: new handshakes present it, and the
    // connection opened before keeps working.
    let second = write_certificate(certs.path());
    assert_ne!(first, second);
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stream = connect(&addr, &[&first, &second], &[b"h2"]).await.unwrap();
        if presented(&stream) == second {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not swap the certificate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        connect(&addr, &[&first], &[b"h2"]).await.is_err(),
        "only the new certificate is presented"
    );
    let (status, _, _) = h2_get(&mut kept, "/healthz").await;
    assert_eq!(status, 200, "the connection opened before the reload still answers");

    // A broken file on reload keeps the certificate in use, and the server up.
    std::fs::write(&cert, "not a certificate").unwrap();
    server.signal(libc::SIGHUP);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stream = connect(&addr, &[&second], &[b"h2"]).await.unwrap();
    assert_eq!(presented(&stream), second);
    let (status, _, _) = h2_get(&mut h2(stream).await, "/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_certificate_without_its_key_a_short_admin_key_or_a_bad_log_level_is_a_start_up_error() {
    let certs = tempfile::tempdir().unwrap();
    write_certificate(certs.path());
    let cert = certs.path().join("cert.pem");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("STOREFRONT__SERVER__TLS_CERT", cert.to_str().unwrap())],
            "tls_cert and tls_key go together",
        ),
        (
            &[
                ("STOREFRONT__SERVER__TLS_CERT", cert.to_str().unwrap()),
                ("STOREFRONT__SERVER__TLS_KEY", "/nonexistent/key.pem"),
            ],
            "/nonexistent/key.pem",
        ),
        (&[("STOREFRONT__AUTH__ADMIN_API_KEY", "short-key")], "at least 32"),
        (&[("STOREFRONT__LOG__LEVEL", "loud")], "invalid [log] level \"loud\""),
    ];
    for (env, expected) in cases {
        let data = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} started");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
    }
}
