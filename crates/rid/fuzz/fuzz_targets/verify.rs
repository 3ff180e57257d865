//! XML signature verification and exclusive C14N on arbitrary bytes: never panics, stays within
//! its limits. The key and certificate in `keys/` are this target's own (made with openssl for
//! fuzzing only); seeds in `corpus/verify` are messages signed with them, so mutations start from
//! signatures that verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_rid::Limits;
use pharos_rid::dsig;

static CERT: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    dsig::certificates_from_pem(include_str!("../keys/cert.pem"))
        .expect("the fuzz certificate parses")
        .remove(0)
});

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let _ = dsig::verify_enveloped(data, &CERT, &limits);
    let _ = dsig::verify_detached(data, &CERT, &limits);
    let _ = dsig::exc_c14n(data, &limits);
    let _ = dsig::exc_c14n_id(data, "rec-1", &limits);
});
