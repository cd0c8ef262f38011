//! The sans-IO SFU: rooms, participants and packet forwarding.
//!
//! Feed it datagrams ([`Sfu::handle_receive`]) and time
//! ([`Sfu::handle_timeout`]), drive it with signaling commands (join, offer,
//! answer, leave…), then call [`Sfu::poll_output`] until it returns
//! [`Output::Timeout`]. It never reads a clock or touches a socket.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::PayloadParams;
use str0m::media::{Direction, KeyframeRequest, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive, TcpType, Transmit};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, Input, Output as RtcOutput, Rtc, bwe::BweKind};
use tracing::{debug, info, warn};

use crate::inspect::{CodecInspector, PayloadInspector, red_primary};
use crate::keyframe::KeyframeThrottle;
use crate::layers::{BitrateMeter, LayerView, rid_rank, select_layer};
use crate::participant::{Participant, Published, SubState, Subscription};
use crate::speaker::SpeakerDetector;
use crate::{ParticipantId, RoomId, SfuConfig, SfuError, SfuMetrics, TrackKey};

/// Audio needs roughly this much per subscription, bits/s (Opus + RED + headers).
const AUDIO_BUDGET: u64 = 64_000;

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LeaveReason {
    /// It said goodbye (or closed its peer connection).
    Left,
    /// Its media path went silent, or never came up.
    Timeout,
    /// Its connection failed (DTLS/SRTP error).
    Failed,
    /// The SFU shut down.
    Shutdown,
}

/// Something signaling must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// Send this offer to the participant; it answers with [`Sfu::accept_answer`].
    Offer {
        /// Who.
        participant: ParticipantId,
        /// SDP text.
        sdp: String,
    },
    /// The participant's media path is up.
    Connected {
        /// Who.
        participant: ParticipantId,
    },
    /// The participant's media path went away; it may come back (ICE restart).
    Disconnected {
        /// Who.
        participant: ParticipantId,
    },
    /// The participant is gone from the SFU.
    Left {
        /// Who.
        participant: ParticipantId,
        /// Its room.
        room: RoomId,
        /// Why.
        reason: LeaveReason,
    },
    /// The loudest participant of a room changed.
    ActiveSpeaker {
        /// The room.
        room: RoomId,
        /// The new speaker.
        participant: ParticipantId,
    },
    /// A subscriber now receives another simulcast layer of a publisher.
    LayerSwitched {
        /// The subscriber.
        subscriber: ParticipantId,
        /// The publisher.
        publisher: ParticipantId,
        /// The layer now forwarded.
        rid: Option<String>,
    },
}

/// What [`Sfu::poll_output`] returns.
#[derive(Debug)]
pub enum Output {
    /// Send this datagram.
    Transmit(Transmit),
    /// Tell signaling.
    Event(SfuEvent),
    /// Nothing more until this instant (or new input).
    Timeout(Instant),
}

struct Room {
    members: Vec<ParticipantId>,
    speaker: SpeakerDetector,
}

/// The SFU core. See the module docs.
pub struct Sfu {
    config: SfuConfig,
    inspector: Box<dyn PayloadInspector>,
    metrics: Arc<SfuMetrics>,
    rooms: HashMap<RoomId, Room>,
    participants: HashMap<ParticipantId, Participant>,
    /// Last known source address of each participant, to route without a scan.
    routes: HashMap<SocketAddr, ParticipantId>,
    next_id: u64,
    now: Instant,
    next_tick: Instant,
    next_reselect: Instant,
    dirty: HashSet<ParticipantId>,
    queue: VecDeque<Output>,
    throttle: KeyframeThrottle<(TrackKey, Option<Rid>)>,
    /// Layers some subscriber waits on a keyframe of.
    keyframes_wanted: Vec<(TrackKey, Option<Rid>)>,
    shutting_down: bool,
}

impl Sfu {
    /// A new SFU at time `now`.
    pub fn new(config: SfuConfig, now: Instant) -> Self {
        Self::with_inspector(config, Box::new(CodecInspector), now)
    }

    /// A new SFU with a custom payload inspector (for E2EE payloads).
    pub fn with_inspector(
        config: SfuConfig,
        inspector: Box<dyn PayloadInspector>,
        now: Instant,
    ) -> Self {
        Sfu {
            throttle: KeyframeThrottle::new(config.keyframe_request_interval),
            next_tick: now + config.speaker_interval,
            next_reselect: now + config.layer_reselect_interval,
            config,
            inspector,
            metrics: Arc::new(SfuMetrics::default()),
            rooms: HashMap::new(),
            participants: HashMap::new(),
            routes: HashMap::new(),
            next_id: 1,
            now,
            dirty: HashSet::new(),
            queue: VecDeque::new(),
            keyframes_wanted: Vec::new(),
            shutting_down: false,
        }
    }

    /// Shared counters for `/metrics`.
    pub fn metrics(&self) -> Arc<SfuMetrics> {
        self.metrics.clone()
    }

    /// The settings in force.
    pub fn config(&self) -> &SfuConfig {
        &self.config
    }

    /// Members of a room, in join order.
    pub fn members(&self, room: &RoomId) -> Vec<ParticipantId> {
        self.rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default()
    }

    /// The room's current active speaker.
    pub fn active_speaker(&self, room: &RoomId) -> Option<ParticipantId> {
        self.rooms.get(room).and_then(|r| r.speaker.current())
    }

    /// Whether the participant's media path is up.
    pub fn is_connected(&self, id: ParticipantId) -> bool {
        self.participants.get(&id).is_some_and(|p| p.connected)
    }

    /// The layer a subscriber currently receives from a publisher's video.
    pub fn forwarded_layer(
        &self,
        subscriber: ParticipantId,
        publisher: ParticipantId,
    ) -> Option<Option<String>> {
        let p = self.participants.get(&subscriber)?;
        p.subs
            .iter()
            .find(|s| s.source.publisher == publisher && s.kind == MediaKind::Video)
            .and_then(|s| s.current)
            .map(|r| r.map(|r| r.to_string()))
    }

    /// Adds a participant to a room (creating the room).
    pub fn join(&mut self, now: Instant, room: RoomId) -> Result<ParticipantId, SfuError> {
        self.advance(now);
        if self.shutting_down {
            return Err(SfuError::ShuttingDown);
        }
        let max = self.config.max_participants_per_room;
        let members = self.rooms.get(&room).map_or(0, |r| r.members.len());
        if members >= max {
            return Err(SfuError::RoomFull { room, max });
        }
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        let rtc = self.new_rtc(now)?;
        let participant = Participant {
            id,
            room: room.clone(),
            rtc,
            joined_at: now,
            connected: false,
            ever_connected: false,
            disconnected_since: None,
            offered: false,
            pending: None,
            ice_restart: false,
            published: Vec::new(),
            subs: Vec::new(),
            estimate: self.config.initial_bitrate,
            wanted_widths: HashMap::new(),
            layer_widths: HashMap::new(),
            next_timeout: now,
        };
        self.participants.insert(id, participant);
        let window = self.config.speaker_interval * 2;
        self.rooms
            .entry(room.clone())
            .or_insert_with(|| Room {
                members: Vec::new(),
                speaker: SpeakerDetector::new(window),
            })
            .members
            .push(id);
        self.update_gauges();
        info!(participant = %id, %room, "joined");
        Ok(id)
    }

    fn new_rtc(&self, now: Instant) -> Result<Rtc, SfuError> {
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .enable_bwe(Some(str0m::bwe::Bitrate::bps(self.config.initial_bitrate)))
            .clear_codecs()
            .enable_opus(true, self.config.audio_red)
            .enable_vp8(true)
            .build(now);
        for addr in &self.config.announce_addrs {
            let candidate = Candidate::host(*addr, "udp")
                .map_err(|e| SfuError::Negotiation(format!("candidate {addr}: {e}")))?;
            rtc.add_local_candidate(candidate);
        }
        for addr in &self.config.tcp_announce_addrs {
            let candidate = Candidate::builder()
                .tcp()
                .host(*addr)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| SfuError::Negotiation(format!("tcp candidate {addr}: {e}")))?;
            rtc.add_local_candidate(candidate);
        }
        rtc.bwe().set_bitrate(
            str0m::bwe::Bitrate::bps(AUDIO_BUDGET),
            str0m::bwe::Bitrate::bps(self.config.max_bitrate),
        );
        Ok(rtc)
    }

    /// Accepts the participant's offer and returns the SDP answer.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sdp: &str,
    ) -> Result<String, SfuError> {
        self.advance(now);
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant(id))?;
        // An offer from the client overrides a server offer in flight; the
        // changes are offered again afterwards.
        if p.pending.take().is_some() {
            for s in &mut p.subs {
                s.state = match s.state {
                    SubState::Negotiating(_) => SubState::ToOpen,
                    SubState::NegotiatingStop(m) => SubState::ToStop(m),
                    other => other,
                };
            }
        }
        let answer = p
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::Negotiation(e.to_string()))?;
        p.offered = true;
        self.dirty.insert(id);
        if !self
            .participants
            .get(&id)
            .is_some_and(|p| p.subs.iter().any(|s| s.source.publisher != id))
        {
            self.subscribe_to_room(id);
        }
        Ok(answer.to_sdp_string())
    }

    /// Applies the participant's answer to the server's last offer.
    pub fn accept_answer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sdp: &str,
    ) -> Result<(), SfuError> {
        self.advance(now);
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant(id))?;
        let pending = p.pending.take().ok_or(SfuError::NoPendingOffer)?;
        p.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| SfuError::Negotiation(e.to_string()))?;
        for s in &mut p.subs {
            if let SubState::Negotiating(m) = s.state {
                s.state = SubState::Open(m);
            }
        }
        p.subs
            .retain(|s| !matches!(s.state, SubState::NegotiatingStop(_)));
        self.dirty.insert(id);
        self.reselect_layers(id, now);
        Ok(())
    }

    /// Asks for an ICE-restart offer toward the participant.
    pub fn restart_ice(&mut self, id: ParticipantId) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant(id))?;
        p.ice_restart = true;
        self.dirty.insert(id);
        Ok(())
    }

    /// Records the width at which `subscriber` shows `publisher`'s video
    /// (0 = hidden).
    pub fn set_video_width(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publisher: ParticipantId,
        width: u32,
    ) -> Result<(), SfuError> {
        self.advance(now);
        let p = self
            .participants
            .get_mut(&subscriber)
            .ok_or(SfuError::UnknownParticipant(subscriber))?;
        p.wanted_widths.insert(publisher, width);
        self.reselect_layers(subscriber, now);
        Ok(())
    }

    /// Records the widths of a publisher's own simulcast layers.
    pub fn set_layer_widths(
        &mut self,
        publisher: ParticipantId,
        widths: impl IntoIterator<Item = (String, u32)>,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&publisher)
            .ok_or(SfuError::UnknownParticipant(publisher))?;
        p.layer_widths = widths
            .into_iter()
            .map(|(rid, w)| (Rid::from(rid.as_str()), w))
            .collect();
        Ok(())
    }

    /// Removes a participant at its own request.
    pub fn leave(&mut self, now: Instant, id: ParticipantId) -> Result<(), SfuError> {
        self.advance(now);
        if !self.participants.contains_key(&id) {
            return Err(SfuError::UnknownParticipant(id));
        }
        self.remove(id, LeaveReason::Left);
        Ok(())
    }

    /// Refuses new participants and removes everyone.
    pub fn shutdown(&mut self, now: Instant) {
        self.advance(now);
        self.shutting_down = true;
        let ids: Vec<_> = self.participants.keys().copied().collect();
        for id in ids {
            self.remove(id, LeaveReason::Shutdown);
        }
    }

    /// Feeds one datagram. Returns false when no participant takes it.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        self.advance(now);
        let Ok(receive) = Receive::new(proto, source, destination, data) else {
            SfuMetrics::add(&self.metrics.unrouted_datagrams, 1);
            return false;
        };
        let input = Input::Receive(now, receive);
        let cached = self.routes.get(&source).copied().filter(|id| {
            self.participants
                .get(id)
                .is_some_and(|p| p.rtc.accepts(&input))
        });
        let target = cached.or_else(|| {
            self.participants
                .values()
                .find(|p| p.rtc.accepts(&input))
                .map(|p| p.id)
        });
        let Some(id) = target else {
            SfuMetrics::add(&self.metrics.unrouted_datagrams, 1);
            return false;
        };
        self.routes.insert(source, id);
        if let Some(p) = self.participants.get_mut(&id)
            && let Err(e) = p.rtc.handle_input(input)
        {
            debug!(participant = %id, error = %e, "input rejected");
        }
        // str0m holds one received RTP packet until the next poll: drain now,
        // before the next datagram overwrites it.
        self.drain_rtc(id);
        true
    }

    /// Moves time forward.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        for p in self.participants.values_mut() {
            if p.next_timeout <= now {
                if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                    debug!(participant = %p.id, error = %e, "timeout handling failed");
                }
                self.dirty.insert(p.id);
            }
        }
        if now >= self.next_tick {
            self.next_tick = now + self.config.speaker_interval;
            self.tick_speakers(now);
            self.expire_participants(now);
        }
        if now >= self.next_reselect {
            self.next_reselect = now + self.config.layer_reselect_interval;
            let ids: Vec<_> = self.participants.keys().copied().collect();
            for id in ids {
                self.reselect_layers(id, now);
            }
        }
    }

    /// The next thing to do. Call until it returns [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        loop {
            if let Some(out) = self.queue.pop_front() {
                return out;
            }
            if self.dirty.is_empty() {
                return Output::Timeout(self.next_deadline());
            }
            let dirty: Vec<_> = self.dirty.drain().collect();
            for id in dirty {
                self.negotiate_if_needed(id);
                self.drain_rtc(id);
            }
        }
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn next_deadline(&self) -> Instant {
        self.participants
            .values()
            .map(|p| p.next_timeout)
            .chain([self.next_tick, self.next_reselect])
            .min()
            .unwrap_or(self.next_tick)
    }

    /// Polls one participant's `Rtc` until it wants a timeout.
    fn drain_rtc(&mut self, id: ParticipantId) {
        loop {
            let Some(p) = self.participants.get_mut(&id) else {
                return;
            };
            if !p.rtc.is_alive() {
                let reason = if p.ever_connected {
                    LeaveReason::Left
                } else {
                    LeaveReason::Failed
                };
                self.remove(id, reason);
                return;
            }
            match p.rtc.poll_output() {
                Ok(RtcOutput::Timeout(t)) => {
                    p.next_timeout = t;
                    return;
                }
                Ok(RtcOutput::Transmit(t)) => self.queue.push_back(Output::Transmit(t)),
                Ok(RtcOutput::Event(e)) => self.on_event(id, e),
                Err(e) => {
                    warn!(participant = %id, error = %e, "participant failed");
                    self.remove(id, LeaveReason::Failed);
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, id: ParticipantId, event: Event) {
        match event {
            Event::IceConnectionStateChange(state) => self.on_ice_state(id, state),
            Event::MediaAdded(added) => {
                if matches!(added.direction, Direction::RecvOnly | Direction::SendRecv) {
                    self.on_publish(id, added.mid, added.kind);
                }
            }
            Event::RtpPacket(packet) => self.on_rtp(id, packet),
            Event::KeyframeRequest(req) => self.on_keyframe_request(id, req),
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                if let Some(p) = self.participants.get_mut(&id) {
                    p.estimate = estimate.as_u64();
                }
                self.reselect_layers(id, self.now);
            }
            Event::Closed => {
                if let Some(p) = self.participants.get_mut(&id) {
                    p.rtc.disconnect();
                }
            }
            _ => {}
        }
    }

    fn on_ice_state(&mut self, id: ParticipantId, state: IceConnectionState) {
        let now = self.now;
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        match state {
            IceConnectionState::Connected | IceConnectionState::Completed if !p.connected => {
                p.connected = true;
                p.ever_connected = true;
                p.disconnected_since = None;
                self.queue
                    .push_back(Output::Event(SfuEvent::Connected { participant: id }));
            }
            IceConnectionState::Disconnected if p.connected => {
                p.connected = false;
                p.disconnected_since = Some(now);
                self.queue
                    .push_back(Output::Event(SfuEvent::Disconnected { participant: id }));
            }
            _ => {}
        }
    }

    /// A participant publishes a new track: everyone else in the room subscribes.
    fn on_publish(&mut self, publisher: ParticipantId, mid: Mid, kind: MediaKind) {
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        if p.published.iter().any(|t| t.mid == mid) {
            return;
        }
        p.published.push(Published {
            mid,
            kind,
            layers: Vec::new(),
        });
        let room = p.room.clone();
        let key = TrackKey { publisher, mid };
        for member in self.members(&room) {
            if member == publisher {
                continue;
            }
            if let Some(s) = self.participants.get_mut(&member)
                && s.offered
            {
                s.subs.push(Subscription::new(key, kind));
                self.dirty.insert(member);
            }
        }
    }

    /// A participant whose first offer was accepted subscribes to all tracks
    /// already published in its room.
    fn subscribe_to_room(&mut self, id: ParticipantId) {
        let Some(room) = self.participants.get(&id).map(|p| p.room.clone()) else {
            return;
        };
        let mut tracks = Vec::new();
        for member in self.members(&room) {
            if member == id {
                continue;
            }
            if let Some(other) = self.participants.get(&member) {
                tracks.extend(other.published.iter().map(|t| {
                    (
                        TrackKey {
                            publisher: member,
                            mid: t.mid,
                        },
                        t.kind,
                    )
                }));
            }
        }
        if let Some(p) = self.participants.get_mut(&id) {
            for (key, kind) in tracks {
                if !p.subs.iter().any(|s| s.source == key) {
                    p.subs.push(Subscription::new(key, kind));
                }
            }
        }
    }

    /// Sends a server offer when subscriptions changed or ICE must restart.
    fn negotiate_if_needed(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if !p.offered || p.pending.is_some() {
            return;
        }
        let needs = p.ice_restart
            || p.subs
                .iter()
                .any(|s| matches!(s.state, SubState::ToOpen | SubState::ToStop(_)));
        if !needs {
            return;
        }
        let mut api = p.rtc.sdp_api();
        if p.ice_restart {
            api.ice_restart(true);
            p.ice_restart = false;
        }
        for s in &mut p.subs {
            match s.state {
                SubState::ToOpen => {
                    let stream_id = s.source.publisher.to_string();
                    let track_id = format!("{}-{}", s.source.publisher, s.source.mid);
                    let mid = api.add_media(
                        s.kind,
                        Direction::SendOnly,
                        Some(stream_id),
                        Some(track_id),
                        None,
                    );
                    s.state = SubState::Negotiating(mid);
                }
                SubState::ToStop(m) => {
                    api.stop_media(m);
                    s.state = SubState::NegotiatingStop(m);
                }
                _ => {}
            }
        }
        if let Some((offer, pending)) = api.apply() {
            p.pending = Some(pending);
            self.queue.push_back(Output::Event(SfuEvent::Offer {
                participant: id,
                sdp: offer.to_sdp_string(),
            }));
        }
    }

    /// Forwards one RTP packet from `publisher` to its room.
    fn on_rtp(&mut self, publisher: ParticipantId, packet: RtpPacket) {
        let now = packet.timestamp.max(self.now);
        SfuMetrics::add(&self.metrics.packets_received, 1);
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        let ssrc = packet.header.ssrc;
        let Some((mid, rid)) = p
            .rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid()))
        else {
            return;
        };
        let pt = packet.header.payload_type;
        let Some(params) = p
            .rtc
            .codec_config()
            .find(|c| c.pt() == pt || c.red() == Some(pt))
            .cloned()
        else {
            return;
        };
        let is_red = params.pt() != pt;
        let Some(track) = p.published.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        let kind = track.kind;
        match track.layers.iter_mut().find(|(r, _)| *r == rid) {
            Some((_, meter)) => meter.record(now, packet.payload.len()),
            None => {
                let mut meter = BitrateMeter::default();
                meter.record(now, packet.payload.len());
                track.layers.push((rid, meter));
            }
        }
        let room = p.room.clone();
        if let Some(level) = packet.header.ext_vals.audio_level
            && let Some(r) = self.rooms.get_mut(&room)
        {
            r.speaker.record(publisher, now, level.unsigned_abs());
        }
        let info = if kind == MediaKind::Video {
            self.inspector.inspect(params.spec().codec, &packet.payload)
        } else {
            Default::default()
        };
        let key = TrackKey { publisher, mid };
        let members = self.members(&room);
        for member in members {
            if member == publisher {
                continue;
            }
            let forward = Forward {
                key,
                rid: &rid,
                packet: &packet,
                params: &params,
                is_red,
                info,
                now,
            };
            self.forward_to(member, forward);
        }
        let wanted = std::mem::take(&mut self.keyframes_wanted);
        for (key, rid) in wanted {
            self.request_keyframe(key, rid, str0m::media::KeyframeRequestKind::Pli);
        }
    }

    fn forward_to(&mut self, member: ParticipantId, f: Forward<'_>) {
        let Some(s) = self.participants.get_mut(&member) else {
            return;
        };
        let Some(sub) = s.subs.iter_mut().find(|x| x.source == f.key) else {
            return;
        };
        let Some(out_mid) = sub.open_mid() else {
            return;
        };
        if sub.kind == MediaKind::Video && sub.current.as_ref() != Some(f.rid) {
            let wanted = sub.target.as_ref() == Some(f.rid);
            let first_plain = f.rid.is_none() && sub.current.is_none();
            if !(wanted && (f.info.keyframe_start || first_plain)) {
                if wanted {
                    // Waiting for a keyframe on the wanted layer: ask for
                    // one (throttled per layer in `request_keyframe`).
                    self.keyframes_wanted.push((f.key, *f.rid));
                }
                return;
            }
            sub.current = Some(*f.rid);
            SfuMetrics::add(&self.metrics.layer_switches, 1);
            self.queue.push_back(Output::Event(SfuEvent::LayerSwitched {
                subscriber: member,
                publisher: f.key.publisher,
                rid: f.rid.as_ref().map(|r| r.to_string()),
            }));
        }
        let Some(out_params) = s.rtc.codec_config().match_params(*f.params).cloned() else {
            return;
        };
        let (pt, payload) = match (f.is_red, out_params.red()) {
            (false, _) => (out_params.pt(), f.packet.payload.clone()),
            (true, Some(red)) => (red, f.packet.payload.clone()),
            (true, None) => match red_primary(&f.packet.payload) {
                Some((_, primary)) => (out_params.pt(), Arc::from(primary)),
                None => return,
            },
        };
        let vp8 = f.info.vp8;
        let Some(rw) = sub.rewriter.rewrite(
            f.packet.header.ssrc,
            *f.packet.seq_no,
            f.packet.header.timestamp,
            vp8.and_then(|d| d.picture_id()),
            vp8.and_then(|d| d.tl0_pic_idx()),
            f.now,
        ) else {
            return;
        };
        let ext = ExtensionValues {
            audio_level: f.packet.header.ext_vals.audio_level,
            voice_activity: f.packet.header.ext_vals.voice_activity,
            video_orientation: f.packet.header.ext_vals.video_orientation,
            ..Default::default()
        };
        let len = payload.len() as u64;
        let mut write = RtpWrite::new(pt, rw.seq, rw.timestamp, f.now, payload)
            .marker(f.packet.header.marker)
            .ext_vals(ext)
            .nackable(sub.kind == MediaKind::Video);
        if let Some(d) = vp8 {
            let mut patch = d.patch();
            if let Some(pid) = rw.picture_id {
                patch = patch.picture_id(pid);
            }
            if let Some(t) = rw.tl0_pic_idx {
                patch = patch.tl0_pic_idx(t);
            }
            if let Ok(patch) = patch.build() {
                write = write.vp8_patch(patch);
            }
        }
        let mut api = s.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(out_mid, None) else {
            return;
        };
        tx.write_rtp(write);
        self.dirty.insert(member);
        SfuMetrics::add(&self.metrics.packets_forwarded, 1);
        SfuMetrics::add(&self.metrics.bytes_forwarded, len);
    }

    /// A subscriber lost video: ask the publisher of that layer, throttled.
    fn on_keyframe_request(&mut self, subscriber: ParticipantId, req: KeyframeRequest) {
        let Some(s) = self.participants.get(&subscriber) else {
            return;
        };
        let Some(sub) = s.subs.iter().find(|x| x.open_mid() == Some(req.mid)) else {
            return;
        };
        let layer = sub.target.or(sub.current).flatten();
        let key = sub.source;
        self.request_keyframe(key, layer, req.kind);
    }

    fn request_keyframe(
        &mut self,
        key: TrackKey,
        rid: Option<Rid>,
        kind: str0m::media::KeyframeRequestKind,
    ) {
        if !self.throttle.allow((key, rid), self.now) {
            SfuMetrics::add(&self.metrics.keyframe_requests_throttled, 1);
            return;
        }
        let Some(p) = self.participants.get_mut(&key.publisher) else {
            return;
        };
        debug!(publisher = %key.publisher, mid = %key.mid, ?rid, ?kind, "keyframe request");
        if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(key.mid, rid) {
            rx.request_keyframe(kind);
            SfuMetrics::add(&self.metrics.keyframe_requests, 1);
            self.dirty.insert(key.publisher);
        }
    }

    /// Chooses the simulcast layer of every video the subscriber receives,
    /// within its bandwidth estimate; the active speaker is served first.
    fn reselect_layers(&mut self, subscriber: ParticipantId, now: Instant) {
        let Some(s) = self.participants.get(&subscriber) else {
            return;
        };
        let speaker = self.rooms.get(&s.room).and_then(|r| r.speaker.current());
        let sources: Vec<TrackKey> = s
            .subs
            .iter()
            .filter(|x| x.kind == MediaKind::Video)
            .map(|x| x.source)
            .collect();
        let audio_subs = s.subs.iter().filter(|x| x.kind == MediaKind::Audio).count() as u64;
        let mut budget = (s.estimate * 9 / 10).saturating_sub(audio_subs * AUDIO_BUDGET);
        let mut views: HashMap<TrackKey, Vec<LayerView>> = HashMap::new();
        for key in &sources {
            let Some(p) = self.participants.get_mut(&key.publisher) else {
                continue;
            };
            let widths = &p.layer_widths;
            let Some(track) = p.published.iter_mut().find(|t| t.mid == key.mid) else {
                continue;
            };
            let mut v: Vec<LayerView> = track
                .layers
                .iter_mut()
                .map(|(rid, meter)| LayerView {
                    rid: *rid,
                    bitrate: meter.bitrate(now),
                    width: rid.as_ref().and_then(|r| widths.get(r).copied()),
                })
                .collect();
            v.sort_by_key(|l| (rid_rank(l.rid.as_ref(), l.width), l.bitrate));
            views.insert(*key, v);
        }
        let Some(s) = self.participants.get_mut(&subscriber) else {
            return;
        };
        let mut order: Vec<usize> = (0..s.subs.len())
            .filter(|i| s.subs[*i].kind == MediaKind::Video)
            .collect();
        order.sort_by_key(|i| s.subs[*i].source.publisher != speaker.unwrap_or(ParticipantId(0)));
        let mut requests = Vec::new();
        for i in order {
            let sub = &mut s.subs[i];
            let Some(layers) = views.get(&sub.source) else {
                continue;
            };
            let wanted = s.wanted_widths.get(&sub.source.publisher).copied();
            let Some(target) = select_layer(layers, budget, wanted, sub.current.as_ref()) else {
                continue;
            };
            let used = layers
                .iter()
                .find(|l| l.rid == target)
                .map_or(0, |l| l.bitrate);
            budget = budget.saturating_sub(used);
            if sub.target.as_ref() != Some(&target) {
                debug!(%subscriber, publisher = %sub.source.publisher, ?target, budget, ?wanted, "layer target");
                sub.target = Some(target);
                if sub.current.as_ref() != Some(&target) && sub.open_mid().is_some() {
                    requests.push((sub.source, target));
                }
            }
        }
        for (key, rid) in requests {
            self.request_keyframe(key, rid, str0m::media::KeyframeRequestKind::Pli);
        }
    }

    fn tick_speakers(&mut self, now: Instant) {
        for (id, room) in &mut self.rooms {
            if let Some(p) = room.speaker.evaluate(now) {
                self.queue.push_back(Output::Event(SfuEvent::ActiveSpeaker {
                    room: id.clone(),
                    participant: p,
                }));
            }
        }
    }

    /// Removes participants whose media never came up or stayed away too long.
    fn expire_participants(&mut self, now: Instant) {
        let grace = self.config.disconnect_grace;
        let connect = self.config.connect_timeout;
        let expired: Vec<_> = self
            .participants
            .values()
            .filter(|p| {
                let lost = p
                    .disconnected_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= grace);
                let never =
                    !p.ever_connected && now.saturating_duration_since(p.joined_at) >= connect;
                lost || never
            })
            .map(|p| p.id)
            .collect();
        for id in expired {
            self.remove(id, LeaveReason::Timeout);
        }
    }

    fn remove(&mut self, id: ParticipantId, reason: LeaveReason) {
        let Some(mut p) = self.participants.remove(&id) else {
            return;
        };
        p.rtc.disconnect();
        // Flush what the disconnect produced (DTLS close) so the peer hears it.
        while let Ok(RtcOutput::Transmit(t)) = p.rtc.poll_output() {
            self.queue.push_back(Output::Transmit(t));
        }
        self.routes.retain(|_, v| *v != id);
        self.dirty.remove(&id);
        self.throttle.retain(|(k, _)| k.publisher != id);
        let room = p.room.clone();
        if let Some(r) = self.rooms.get_mut(&room) {
            r.members.retain(|m| *m != id);
            r.speaker.remove(id);
            if r.members.is_empty() {
                self.rooms.remove(&room);
            }
        }
        for other in self.participants.values_mut() {
            if other.room != room {
                continue;
            }
            let before = other.subs.len();
            other
                .subs
                .retain(|s| !(s.source.publisher == id && s.state == SubState::ToOpen));
            let mut changed = other.subs.len() != before;
            for s in &mut other.subs {
                if s.source.publisher != id {
                    continue;
                }
                if let SubState::Negotiating(m) | SubState::Open(m) = s.state {
                    s.state = SubState::ToStop(m);
                    changed = true;
                }
            }
            other.wanted_widths.remove(&id);
            if changed {
                self.dirty.insert(other.id);
            }
        }
        info!(participant = %id, %room, ?reason, "left");
        self.queue.push_back(Output::Event(SfuEvent::Left {
            participant: id,
            room,
            reason,
        }));
        self.update_gauges();
    }

    fn update_gauges(&self) {
        SfuMetrics::set(&self.metrics.rooms, self.rooms.len() as u64);
        SfuMetrics::set(&self.metrics.participants, self.participants.len() as u64);
    }
}

/// One packet on its way to one subscriber.
struct Forward<'a> {
    key: TrackKey,
    rid: &'a Option<Rid>,
    packet: &'a RtpPacket,
    params: &'a PayloadParams,
    is_red: bool,
    info: crate::inspect::PacketInfo,
    now: Instant,
}
