// Package packet encodes and decodes the MQTT control packets of protocol
// levels 3 (MQTT 3.1, protocol name "MQIsdp"), 4 (MQTT 3.1.1) and 5 (MQTT 5.0).
//
// There is one struct per packet type (Connect, Connack, Publish, Puback,
// Pubrec, Pubrel, Pubcomp, Subscribe, Suback, Unsubscribe, Unsuback, Pingreq,
// Pingresp, Disconnect, Auth), each implementing Packet. 5.0 properties live in
// Properties; reason codes are ReasonCode values.
//
// Decoding is incremental: a Decoder is handed the bytes received so far and
// returns one complete packet, or reports how many bytes it still needs,
// without consuming or copying anything. It checks the Remaining Length
// against its maximum packet size before anything is allocated or waited for.
// Every validation failure is an *Error carrying the 5.0 reason code that the
// receiver must answer with.
//
// Decoded strings and byte slices alias the decoder's input when
// Decoder.Reuse is set (the zero-allocation mode for hot paths): such a packet
// is valid only until the input buffer is changed or Decode is called again,
// and whatever must outlive that has to be copied (Publish.Clone). Without
// Reuse, each packet owns a private copy of its bytes.
//
// Encoding appends to a caller-provided buffer (Packet.Append); Packet.Size
// tells beforehand how many bytes a packet takes, so a sender can honour the
// peer's Maximum Packet Size.
package packet
