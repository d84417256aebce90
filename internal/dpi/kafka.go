package dpi

import "encoding/binary"

// NewKafka returns the parser of the Apache Kafka protocol (also spoken by Redpanda,
// WarpStream and Azure Event Hubs' Kafka endpoint).
//
// The client speaks first, with a request: a 4-byte size, then the request header: API
// key, API version, correlation id and client id (a nullable string). All of them must be
// sane: a known API key, a small version, a non-negative correlation id and a printable
// client id, which must be null or not empty. Command is the API's name ("ApiVersions",
// "Metadata", "Produce", ...) and User the client id. From the server, only the answer
// to ApiVersions is recognised (see kafkaAPIVersionsResponse); it carries nothing to
// record.
//
// The parser holds no state and is safe for concurrent use.
func NewKafka() Parser { return kafkaParser{} }

type kafkaParser struct{}

func (kafkaParser) App() App { return Kafka }

const (
	kafkaMaxRequest  = 100 << 20         // socket.request.max.bytes of the broker
	kafkaMaxVersion  = 31                // every API is below 20 today
	kafkaMaxClientID = 1024              // client ids are a few dozen bytes
	kafkaHeaderLen   = 4 + 2 + 2 + 4 + 2 // size, key, version, correlation id, client id length

	kafkaMaxAPIVersionsSize = 1 << 16 // an ApiVersions response is a few hundred bytes
	kafkaMaxAPIKeys         = 1 << 10 // keys a response may list, future ones included
	kafkaUnsupportedVersion = 35      // the error code UNSUPPORTED_VERSION
)

// kafkaAPIs names the API keys, from the Kafka protocol guide
// (clients/src/main/java/org/apache/kafka/common/protocol/ApiKeys.java).
var kafkaAPIs = [...]string{
	"Produce", "Fetch", "ListOffsets", "Metadata", "LeaderAndIsr", "StopReplica",
	"UpdateMetadata", "ControlledShutdown", "OffsetCommit", "OffsetFetch",
	"FindCoordinator", "JoinGroup", "Heartbeat", "LeaveGroup", "SyncGroup",
	"DescribeGroups", "ListGroups", "SaslHandshake", "ApiVersions", "CreateTopics",
	"DeleteTopics", "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch",
	"AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "WriteTxnMarkers",
	"TxnOffsetCommit", "DescribeAcls", "CreateAcls", "DeleteAcls", "DescribeConfigs",
	"AlterConfigs", "AlterReplicaLogDirs", "DescribeLogDirs", "SaslAuthenticate",
	"CreatePartitions", "CreateDelegationToken", "RenewDelegationToken",
	"ExpireDelegationToken", "DescribeDelegationToken", "DeleteGroups", "ElectLeaders",
	"IncrementalAlterConfigs", "AlterPartitionReassignments",
	"ListPartitionReassignments", "OffsetDelete", "DescribeClientQuotas",
	"AlterClientQuotas", "DescribeUserScramCredentials", "AlterUserScramCredentials",
	"Vote", "BeginQuorumEpoch", "EndQuorumEpoch", "DescribeQuorum", "AlterPartition",
	"UpdateFeatures", "Envelope", "FetchSnapshot", "DescribeCluster",
	"DescribeProducers", "BrokerRegistration", "BrokerHeartbeat", "UnregisterBroker",
	"DescribeTransactions", "ListTransactions", "AllocateProducerIds",
	"ConsumerGroupHeartbeat", "ConsumerGroupDescribe", "ControllerRegistration",
	"GetTelemetrySubscriptions", "PushTelemetry", "AssignReplicasToDirs",
	"ListConfigResources", "DescribeTopicPartitions", "ShareGroupHeartbeat",
	"ShareGroupDescribe", "ShareFetch", "ShareAcknowledge", "AddRaftVoter",
	"RemoveRaftVoter", "UpdateRaftVoter", "InitializeShareGroupState",
	"ReadShareGroupState", "WriteShareGroupState", "DeleteShareGroupState",
	"ReadShareGroupStateSummary", "StreamsGroupHeartbeat", "StreamsGroupDescribe",
	"DescribeShareGroupOffsets", "AlterShareGroupOffsets", "DeleteShareGroupOffsets",
}

func (kafkaParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	// The size is big-endian and at most 100 MB: its first byte is below 7.
	if len(data) >= 1 && data[0] > kafkaMaxRequest>>24 {
		return NoMatch
	}
	if dir == FromServer {
		return kafkaAPIVersionsResponse(data)
	}
	var size int
	if len(data) >= 4 {
		size = int(binary.BigEndian.Uint32(data))
		if size < kafkaHeaderLen-4 || size > kafkaMaxRequest {
			return NoMatch
		}
	}
	if len(data) >= 6 {
		if key := binary.BigEndian.Uint16(data[4:]); int(key) >= len(kafkaAPIs) {
			return NoMatch
		}
	}
	if len(data) >= 8 && binary.BigEndian.Uint16(data[6:]) > kafkaMaxVersion {
		return NoMatch
	}
	if len(data) >= 9 && data[8]&0x80 != 0 { // correlation ids count up from 0
		return NoMatch
	}
	if len(data) < kafkaHeaderLen {
		return NeedMore
	}
	idLen := int(int16(binary.BigEndian.Uint16(data[12:])))
	if idLen == 0 || idLen < -1 || idLen > kafkaMaxClientID || kafkaHeaderLen-4+max(idLen, 0) > size {
		// Clients name themselves ("producer-1", "rdkafka", "sarama") or send null; an
		// empty name is what runs of zeros in other protocols look like.
		return NoMatch
	}
	var clientID []byte
	if idLen > 0 {
		end := kafkaHeaderLen + idLen
		for _, c := range data[kafkaHeaderLen:min(end, len(data))] {
			if c < ' ' || c == 0x7f {
				return NoMatch
			}
		}
		if len(data) < end {
			return NeedMore
		}
		clientID = data[kafkaHeaderLen:end]
	}
	d.Command = kafkaAPIs[binary.BigEndian.Uint16(data[4:])]
	if len(clientID) > 0 {
		d.User = printable(clientID, appMaxText)
	}
	return Match
}

// kafkaAPIVersionsResponse judges a server's first bytes. A response carries its size and
// correlation id, then a body whose shape depends on the request, so only the answer to
// ApiVersions, which every current client sends first, is read: error code 0 or 35
// (UNSUPPORTED_VERSION), then (key, min, max) for each API, keys ascending. Versions 0 to
// 2 count the entries in an int32; 3 and later in an unsigned varint of count+1 and end
// each entry with tagged fields. A server answering another request first is NoMatch.
func kafkaAPIVersionsResponse(data []byte) Verdict {
	data = data[:min(len(data), MaxInspect)] // what is judged at MaxInspect stays judged
	if len(data) >= 4 {
		size := binary.BigEndian.Uint32(data)
		if size < 4+2+1 || size > kafkaMaxAPIVersionsSize {
			return NoMatch
		}
	}
	if len(data) >= 5 && data[4]&0x80 != 0 {
		return NoMatch
	}
	if len(data) >= 10 {
		if e := binary.BigEndian.Uint16(data[8:]); e != 0 && e != kafkaUnsupportedVersion {
			return NoMatch
		}
	}
	if len(data) < 11 {
		return NeedMore
	}
	end := min(len(data), 4+int(binary.BigEndian.Uint32(data)))
	complete := end == 4+int(binary.BigEndian.Uint32(data))
	var count, at, entry int
	if data[10] == 0 {
		// int32 count, 6-byte entries
		if end < 14 {
			if complete {
				return NoMatch
			}
			return NeedMore
		}
		count, at, entry = int(binary.BigEndian.Uint32(data[10:])), 14, 6
	} else {
		// varint count+1, 7-byte entries (the last byte: no tagged fields)
		n, k := binary.Uvarint(data[10:end])
		if k <= 0 {
			if k == 0 && !complete {
				return NeedMore
			}
			return NoMatch
		}
		count, at, entry = int(n)-1, 10+k, 7
	}
	if count < 1 || count > kafkaMaxAPIKeys || at+count*entry > end && complete {
		return NoMatch
	}
	prev := -1
	for k := 0; k < count && at+entry <= end; k++ {
		key := int(binary.BigEndian.Uint16(data[at:]))
		lo := binary.BigEndian.Uint16(data[at+2:])
		hi := binary.BigEndian.Uint16(data[at+4:])
		if key <= prev || key >= kafkaMaxAPIKeys || lo > hi || hi > kafkaMaxVersion ||
			entry == 7 && data[at+6] != 0 {
			return NoMatch
		}
		prev = key
		at += entry
	}
	if !complete && len(data) < MaxInspect {
		return NeedMore
	}
	return Match
}
