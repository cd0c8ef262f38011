//! SDP offers and datagrams from the network into the SFU core.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use samtale_sfu::str0m::net::Protocol;
use samtale_sfu::{Output, RoomId, Sfu, SfuConfig};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let config = SfuConfig { announce_addrs: vec!["127.0.0.1:5000".parse().unwrap()], ..SfuConfig::default() };
    let mut sfu = Sfu::new(config, now);
    let Ok(room) = RoomId::new("fuzz") else { return };
    let Ok(id) = sfu.join(now, room) else { return };
    // First half as SDP, second half as a datagram.
    let (sdp, datagram) = data.split_at(data.len() / 2);
    let _ = sfu.accept_offer(now, id, &String::from_utf8_lossy(sdp));
    let _ = sfu.accept_answer(now, id, &String::from_utf8_lossy(sdp));
    let source = "127.0.0.1:6000".parse().unwrap();
    let destination = "127.0.0.1:5000".parse().unwrap();
    sfu.handle_receive(now, Protocol::Udp, source, destination, datagram);
    sfu.handle_timeout(now + Duration::from_millis(10));
    for _ in 0..10_000 {
        if let Output::Timeout(_) = sfu.poll_output() {
            break;
        }
    }
});
