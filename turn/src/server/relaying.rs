//! Moving application data: Send indications and ChannelData from clients
//! to peers, and peer datagrams back as ChannelData or Data indications
//! (RFC 8656 §10–§12). Anything not allowed is dropped silently.

use std::net::SocketAddr;
use std::time::Instant;

use super::relay::RelayAllocator;
use super::types::{Destination, FiveTuple, RelayTransport};
use super::{Payload, Pending, TurnServer};
use crate::codec::{
    AddressFamily, Attribute, CHANNEL_DATA_HEADER_LEN, ChannelData, Class, MAX_BODY_LEN, Message,
    MessageBuilder, MessageType, Method, TransactionId, attr_type,
};

impl<A: RelayAllocator> TurnServer<A> {
    pub(super) fn on_send(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
    ) -> Option<Pending> {
        if !msg.unknown_comprehension_required().is_empty() {
            return None;
        }
        let id = self.live_allocation(&tuple, now)?;
        let allocation = self.table.get(id)?;
        let Ok(Some(Attribute::XorPeerAddress(peer))) = msg.decode(attr_type::XOR_PEER_ADDRESS)
        else {
            return None;
        };
        let data = msg.get(attr_type::DATA)?;
        if AddressFamily::of(&peer.ip()) != AddressFamily::of(&allocation.relay.ip())
            || allocation.relay_transport != RelayTransport::Udp
            || !allocation.has_permission(peer.ip(), now)
        {
            return None;
        }
        if self.filter.check_addr(peer).is_err() {
            self.counters.denied_peers += 1;
            return None;
        }
        let cap = self.config.max_bandwidth_per_allocation;
        if !self
            .table
            .get_mut(id)?
            .take_bandwidth(data.value.len(), cap, now)
        {
            self.counters.rate_limited += 1;
            return None;
        }
        let allocation = self.table.get(id)?;
        let start = data.offset + 4;
        let relay = allocation.relay;
        self.counters.packets_to_peers += 1;
        self.counters.bytes_to_peers += data.value.len() as u64;
        Some(Pending {
            destination: Destination::Peer { relay, peer },
            payload: Payload::Input(start..start + data.value.len()),
        })
    }

    pub(super) fn on_channel_data(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
    ) -> Option<Pending> {
        let Ok(frame) = ChannelData::parse(data) else {
            self.counters.malformed += 1;
            return None;
        };
        let id = self.live_allocation(&tuple, now)?;
        let allocation = self.table.get(id)?;
        let peer = allocation.peer_for_channel(frame.channel, now)?;
        if !allocation.has_permission(peer.ip(), now) {
            return None;
        }
        let cap = self.config.max_bandwidth_per_allocation;
        if !self
            .table
            .get_mut(id)?
            .take_bandwidth(frame.data.len(), cap, now)
        {
            self.counters.rate_limited += 1;
            return None;
        }
        let relay = self.table.get(id)?.relay;
        self.counters.packets_to_peers += 1;
        self.counters.bytes_to_peers += frame.data.len() as u64;
        Some(Pending {
            destination: Destination::Peer { relay, peer },
            payload: Payload::Input(
                CHANNEL_DATA_HEADER_LEN..CHANNEL_DATA_HEADER_LEN + frame.data.len(),
            ),
        })
    }

    pub(super) fn on_peer_data(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
        buf: &mut Vec<u8>,
    ) -> Option<Pending> {
        let id = self.table.id_by_relay(&relay)?;
        let allocation = self.table.get(id)?;
        if !allocation.is_alive(now) || !allocation.has_permission(peer.ip(), now) {
            return None;
        }
        if self.filter.check_addr(peer).is_err() {
            self.counters.denied_peers += 1;
            return None;
        }
        let cap = self.config.max_bandwidth_per_allocation;
        if !self.table.get_mut(id)?.take_bandwidth(data.len(), cap, now) {
            self.counters.rate_limited += 1;
            return None;
        }
        let allocation = self.table.get(id)?;
        let tuple = allocation.five_tuple;
        if let Some(channel) = allocation.channel_for_peer(&peer, now) {
            if !ChannelData::encode_into(channel, data, tuple.transport.is_stream(), buf) {
                return None;
            }
        } else {
            // DATA + XOR-PEER-ADDRESS headers and values must fit a STUN length.
            if data.len() + 4 + 4 + 20 > MAX_BODY_LEN {
                return None;
            }
            let mut b = MessageBuilder::with_buffer(
                std::mem::take(buf),
                MessageType::new(Method::DATA, Class::Indication),
                TransactionId::random(),
            );
            b.add(&Attribute::XorPeerAddress(peer));
            b.add(&Attribute::Data(data));
            *buf = b.finish();
        }
        self.counters.packets_to_clients += 1;
        self.counters.bytes_to_clients += data.len() as u64;
        Some(Pending {
            destination: Destination::Client(tuple),
            payload: Payload::Scratch,
        })
    }
}
