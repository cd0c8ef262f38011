//! S3 presigning reproduces AWS's published SigV4 example: "Example: GET
//! object" in *Authenticating Requests: Using Query Parameters (AWS
//! Signature Version 4)*, Amazon S3 API Reference.
// Shared helpers here are plain functions, not #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use samtale_media::ManualClock;
use samtale_media::storage::{ObjectKey, S3Config, S3Storage, Storage, UrlStyle};

#[test]
fn presigned_get_matches_the_aws_documentation_example() {
    // 20130524T000000Z
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
    let mut config = S3Config::new(
        "https://s3.amazonaws.com",
        "examplebucket",
        "us-east-1",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    config.url_style = UrlStyle::VirtualHost;
    config.clock_skew = Duration::ZERO;
    config.attachment_downloads = false;
    let s3 = S3Storage::new(config, Arc::new(ManualClock::new(t))).unwrap();
    let req = s3
        .presign_get(
            &ObjectKey::new("test.txt").unwrap(),
            Duration::from_secs(86400),
        )
        .unwrap();
    assert_eq!(
        req.url,
        "https://examplebucket.s3.amazonaws.com/test.txt\
         ?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z\
         &X-Amz-Expires=86400\
         &X-Amz-SignedHeaders=host\
         &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    assert_eq!(req.expires_at, t + Duration::from_secs(86400));
}

#[test]
fn expiry_is_bounded_to_seven_days_and_skew_is_applied() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let config = S3Config::new("http://127.0.0.1:9", "b", "eu-north-1", "AK", "SK");
    let s3 = S3Storage::new(config, Arc::new(ManualClock::new(now))).unwrap();
    let k = ObjectKey::new("k").unwrap();
    assert!(
        s3.presign_get(&k, Duration::from_secs(7 * 86400 + 1))
            .is_err()
    );
    assert!(s3.presign_get(&k, Duration::ZERO).is_err());
    let req = s3.presign_get(&k, Duration::from_secs(7 * 86400)).unwrap();
    // Backdated by the default 5 min skew, lifetime capped at 7 days.
    assert!(
        req.url.contains("X-Amz-Expires=604800"),
        "{}",
        req.url.len()
    );
    assert_eq!(
        req.expires_at,
        now - Duration::from_secs(300) + Duration::from_secs(604800)
    );
    assert!(req.url.contains("response-content-disposition=attachment"));
    assert!(
        !format!("{req:?}").contains("X-Amz-Signature"),
        "URLs are redacted in Debug"
    );
}
