//! A virtual-time network of str0m clients around one `Sfu`.
//!
//! Time only moves by jumping to the next deadline (a packet arriving, a
//! timer, a media frame), so multi-second calls run in milliseconds and
//! nothing sleeps. Each client's downlink can be rate-limited with a
//! drop-tail queue to make the SFU's bandwidth estimate fall.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use samtale_sfu::str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use samtale_sfu::str0m::format::Codec;
use samtale_sfu::str0m::media::{
    Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid, Rid, Simulcast,
    SimulcastLayer,
};
use samtale_sfu::str0m::net::{Protocol, TcpType};
use samtale_sfu::str0m::{Candidate, Event, Input, Output as RtcOutput, Rtc};
use samtale_sfu::{Output, ParticipantId, RoomId, Sfu, SfuConfig, SfuEvent};

pub const SFU_ADDR: &str = "192.0.2.1:5000";
pub const SFU_TCP_ADDR: &str = "192.0.2.1:5001";
/// Where a fake video frame carries its publisher's index.
const VIDEO_TAG_AT: usize = 10;
const ONE_WAY: Duration = Duration::from_millis(15);

/// Bytes per video frame for each simulcast layer (30 fps):
/// q ≈ 96 kbit/s, h ≈ 360 kbit/s, f ≈ 1.2 Mbit/s.
pub const LAYERS: [(&str, usize); 3] = [("q", 400), ("h", 1500), ("f", 5000)];

pub struct Link {
    pub rate_bps: Option<u64>,
    free_at: Instant,
    pub dropped: u64,
}

impl Link {
    fn new(now: Instant) -> Self {
        Link {
            rate_bps: None,
            free_at: now,
            dropped: 0,
        }
    }

    /// When a packet of `len` bytes sent at `now` arrives, or None if the
    /// queue (max 150 ms) is full.
    fn schedule(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let Some(rate) = self.rate_bps else {
            return Some(now + ONE_WAY);
        };
        let start = self.free_at.max(now);
        if start.saturating_duration_since(now) > Duration::from_millis(150) {
            self.dropped += 1;
            return None;
        }
        let tx = Duration::from_micros(len as u64 * 8 * 1_000_000 / rate);
        self.free_at = start + tx;
        Some(self.free_at + ONE_WAY)
    }
}

pub struct Client {
    pub index: u8,
    pub id: ParticipantId,
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub pending: Option<SdpPendingOffer>,
    pub downlink: Link,
    /// Drop everything to and from this client (a crash).
    pub unplugged: bool,
    pub audio_mid: Option<Mid>,
    pub video_mid: Option<Mid>,
    pub simulcast: bool,
    pub publishing: bool,
    /// dBov written in the audio-level extension (0 loud … 127 silent).
    pub audio_level: i8,
    frame: u64,
    next_audio: Instant,
    next_video: Instant,
    force_keyframe: bool,
    pub next_timeout: Instant,
    /// (publisher index, kind) → frames received.
    pub received: HashMap<(u8, MediaKind), u64>,
    /// Video frames received per publisher by frame size.
    pub video_sizes: HashMap<u8, Vec<usize>>,
    pub keyframe_requests_seen: u64,
    /// Media sections the SFU added toward this client.
    pub recv_mids: Vec<(Mid, MediaKind)>,
}

impl Client {
    pub fn frames_from(&self, publisher: u8, kind: MediaKind) -> u64 {
        self.received.get(&(publisher, kind)).copied().unwrap_or(0)
    }

    pub fn request_keyframe_from_all(&mut self) {
        for (mid, kind) in self.recv_mids.clone() {
            if kind != MediaKind::Video {
                continue;
            }
            if let Some(mut w) = self.rtc.writer(mid) {
                let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
            }
        }
    }
}

struct InFlight {
    to_sfu: bool,
    proto: Protocol,
    client: usize,
    source: SocketAddr,
    destination: SocketAddr,
    data: Vec<u8>,
}

pub struct Harness {
    pub now: Instant,
    pub sfu: Sfu,
    pub clients: Vec<Client>,
    pub events: Vec<(Instant, SfuEvent)>,
    flight: BinaryHeap<Reverse<(Instant, u64)>>,
    packets: HashMap<u64, InFlight>,
    seq: u64,
    sfu_timeout: Instant,
}

impl Harness {
    pub fn new(config: SfuConfig) -> Self {
        let now = Instant::now();
        let mut config = config;
        config.announce_addrs = vec![SFU_ADDR.parse().unwrap()];
        config.tcp_announce_addrs = vec![SFU_TCP_ADDR.parse().unwrap()];
        Harness {
            now,
            sfu: Sfu::new(config, now),
            clients: Vec::new(),
            events: Vec::new(),
            flight: BinaryHeap::new(),
            packets: HashMap::new(),
            seq: 0,
            sfu_timeout: now,
        }
    }

    /// Joins a client to `room`, publishing audio and video (optionally
    /// simulcast), and completes the first offer/answer.
    pub fn join(&mut self, room: &str, simulcast: bool) -> usize {
        self.join_with(room, simulcast, Protocol::Udp)
    }

    /// Joins a client that can only reach the SFU over TCP (ICE-TCP).
    pub fn join_tcp(&mut self, room: &str) -> usize {
        self.join_with(room, false, Protocol::Tcp)
    }

    fn join_with(&mut self, room: &str, simulcast: bool, proto: Protocol) -> usize {
        let index = self.clients.len();
        let addr: SocketAddr = format!("198.51.100.{}:4000", index + 1).parse().unwrap();
        let id = self.sfu.join(self.now, RoomId::new(room).unwrap()).unwrap();
        let mut rtc = Rtc::builder().build(self.now);
        let candidate = match proto {
            Protocol::Tcp => Candidate::builder()
                .tcp()
                .host(addr)
                .tcptype(TcpType::Active)
                .build()
                .unwrap(),
            _ => Candidate::host(addr, "udp").unwrap(),
        };
        rtc.add_local_candidate(candidate);
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let sim = simulcast.then(|| {
            let mut s = Simulcast::new();
            for (rid, _) in LAYERS {
                s.add_send_layer(SimulcastLayer::new(rid));
            }
            s
        });
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, sim);
        let (offer, pending) = api.apply().unwrap();
        let answer = self
            .sfu
            .accept_offer(self.now, id, &offer.to_sdp_string())
            .unwrap();
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        self.clients.push(Client {
            index: index as u8,
            id,
            rtc,
            addr,
            pending: None,
            downlink: Link::new(self.now),
            unplugged: false,
            audio_mid: Some(audio),
            video_mid: Some(video),
            simulcast,
            publishing: true,
            audio_level: 127,
            frame: 0,
            next_audio: self.now,
            next_video: self.now,
            force_keyframe: true,
            next_timeout: self.now,
            received: HashMap::new(),
            video_sizes: HashMap::new(),
            keyframe_requests_seen: 0,
            recv_mids: Vec::new(),
        });
        index
    }

    pub fn client_by_id(&self, id: ParticipantId) -> Option<usize> {
        self.clients.iter().position(|c| c.id == id)
    }

    /// Runs the network until `duration` of virtual time has passed.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        let mut steps = 0u64;
        while self.now < end {
            steps += 1;
            assert!(
                steps < 5_000_000,
                "livelock: virtual time stopped advancing"
            );
            self.poll_all();
            let next = self.next_deadline().min(end);
            if next > self.now {
                self.now = next;
            }
            self.deliver_due();
            self.fire_timers();
            self.write_media();
        }
        self.poll_all();
    }

    fn next_deadline(&self) -> Instant {
        let mut t = self.sfu_timeout;
        if let Some(Reverse((at, _))) = self.flight.peek() {
            t = t.min(*at);
        }
        for c in &self.clients {
            if c.unplugged {
                continue;
            }
            t = t.min(c.next_timeout);
            if c.publishing {
                t = t.min(c.next_audio).min(c.next_video);
            }
        }
        t
    }

    fn send(&mut self, at: Instant, packet: InFlight) {
        self.seq += 1;
        self.flight.push(Reverse((at, self.seq)));
        self.packets.insert(self.seq, packet);
    }

    fn poll_all(&mut self) {
        for _ in 0..100 {
            let mut progressed = false;
            // The SFU.
            loop {
                match self.sfu.poll_output() {
                    Output::Timeout(t) => {
                        self.sfu_timeout = t;
                        break;
                    }
                    Output::Transmit(t) => {
                        progressed = true;
                        let Some(ci) = self.clients.iter().position(|c| c.addr == t.destination)
                        else {
                            continue;
                        };
                        if self.clients[ci].unplugged {
                            continue;
                        }
                        let len = t.contents.len();
                        if let Some(at) = self.clients[ci].downlink.schedule(self.now, len) {
                            self.send(
                                at,
                                InFlight {
                                    to_sfu: false,
                                    proto: t.proto,
                                    client: ci,
                                    source: t.source,
                                    destination: t.destination,
                                    data: t.contents.to_vec(),
                                },
                            );
                        }
                    }
                    Output::Event(e) => {
                        progressed = true;
                        self.on_sfu_event(e.clone());
                        self.events.push((self.now, e));
                    }
                }
            }
            // The clients.
            for ci in 0..self.clients.len() {
                loop {
                    let c = &mut self.clients[ci];
                    match c.rtc.poll_output() {
                        Ok(RtcOutput::Timeout(t)) => {
                            c.next_timeout = t;
                            break;
                        }
                        Ok(RtcOutput::Transmit(t)) => {
                            progressed = true;
                            if c.unplugged {
                                continue;
                            }
                            let at = self.now + ONE_WAY;
                            self.send(
                                at,
                                InFlight {
                                    to_sfu: true,
                                    proto: t.proto,
                                    client: ci,
                                    source: t.source,
                                    destination: t.destination,
                                    data: t.contents.to_vec(),
                                },
                            );
                        }
                        Ok(RtcOutput::Event(e)) => {
                            progressed = true;
                            on_client_event(c, e);
                        }
                        Err(e) => panic!("client {ci} failed: {e}"),
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn on_sfu_event(&mut self, e: SfuEvent) {
        if let SfuEvent::Offer { participant, sdp } = e {
            let Some(ci) = self.client_by_id(participant) else {
                return;
            };
            let c = &mut self.clients[ci];
            let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
            let answer = c.rtc.sdp_api().accept_offer(offer).unwrap();
            self.sfu
                .accept_answer(self.now, participant, &answer.to_sdp_string())
                .unwrap();
        }
    }

    fn deliver_due(&mut self) {
        while let Some(Reverse((at, seq))) = self.flight.peek().copied() {
            if at > self.now {
                break;
            }
            self.flight.pop();
            let Some(p) = self.packets.remove(&seq) else {
                continue;
            };
            if self.clients[p.client].unplugged {
                continue;
            }
            if p.to_sfu {
                self.sfu
                    .handle_receive(self.now, p.proto, p.source, p.destination, &p.data);
            } else {
                let c = &mut self.clients[p.client];
                let input = Input::Receive(
                    self.now,
                    samtale_sfu::str0m::net::Receive::new(
                        Protocol::Udp,
                        p.source,
                        p.destination,
                        &p.data,
                    )
                    .unwrap(),
                );
                c.rtc.handle_input(input).unwrap();
            }
        }
    }

    fn fire_timers(&mut self) {
        if self.sfu_timeout <= self.now {
            self.sfu.handle_timeout(self.now);
        }
        for c in &mut self.clients {
            if !c.unplugged && c.next_timeout <= self.now {
                c.rtc.handle_input(Input::Timeout(self.now)).unwrap();
            }
        }
    }

    fn write_media(&mut self) {
        let now = self.now;
        for c in &mut self.clients {
            if !c.publishing || c.unplugged {
                continue;
            }
            if c.next_audio <= now {
                c.next_audio = now + Duration::from_millis(20);
                if let Some(mid) = c.audio_mid {
                    let n = c.frame;
                    let level = c.audio_level;
                    if let Some(w) = c.rtc.writer(mid) {
                        let pt = w
                            .payload_params()
                            .find(|p| p.spec().codec == Codec::Opus)
                            .map(|p| p.pt());
                        if let Some(pt) = pt {
                            let mut data = vec![c.index; 60];
                            data[1] = (n % 251) as u8;
                            let time = MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ);
                            let _ = w
                                .audio_level(-level.abs(), level < 60)
                                .write(pt, now, time, data);
                        }
                    }
                }
            }
            if c.next_video <= now {
                c.next_video = now + Duration::from_millis(33);
                c.frame += 1;
                let n = c.frame;
                // Like libwebrtc: keyframes only at the start and on request.
                let key = c.force_keyframe;
                c.force_keyframe = false;
                if let Some(mid) = c.video_mid {
                    let layers: Vec<(Option<Rid>, usize)> = if c.simulcast {
                        LAYERS
                            .iter()
                            .map(|(r, s)| (Some(Rid::from(*r)), *s))
                            .collect()
                    } else {
                        vec![(None, 1200)]
                    };
                    for (rid, size) in layers {
                        let Some(w) = c.rtc.writer(mid) else { continue };
                        let Some(pt) = w
                            .payload_params()
                            .find(|p| p.spec().codec == Codec::Vp8)
                            .map(|p| p.pt())
                        else {
                            continue;
                        };
                        let mut data = vec![0u8; size];
                        // A VP8 frame tag (show_frame=1, P bit = !key), and
                        // for keyframes the start code and 320x240.
                        data[0] = if key { 0x10 } else { 0x11 };
                        if key {
                            data[3..10]
                                .copy_from_slice(&[0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
                        }
                        data[VIDEO_TAG_AT] = c.index;
                        let time = MediaTime::new(n * 3000, Frequency::NINETY_KHZ);
                        let w = match rid {
                            Some(r) => w.rid(r),
                            None => w,
                        };
                        let _ = w.write(pt, now, time, data);
                    }
                }
            }
        }
    }
}

fn on_client_event(c: &mut Client, e: Event) {
    match e {
        Event::MediaData(d) => {
            let Some(media) = c.rtc.media(d.mid) else {
                return;
            };
            let kind = media.kind();
            let publisher = match kind {
                MediaKind::Audio => d.data.first().copied(),
                MediaKind::Video => d.data.get(VIDEO_TAG_AT).copied(),
            };
            if let Some(p) = publisher {
                *c.received.entry((p, kind)).or_default() += 1;
                if kind == MediaKind::Video {
                    c.video_sizes.entry(p).or_default().push(d.data.len());
                }
            }
        }
        Event::MediaAdded(m) => c.recv_mids.push((m.mid, m.kind)),
        Event::KeyframeRequest(_) => {
            c.keyframe_requests_seen += 1;
            c.force_keyframe = true;
        }
        _ => {}
    }
}
