// Connects to the URL in argv[2] with MQTT.js, subscribes to a topic,
// publishes to it at QoS 1 and prints the message it gets back.
// Exit 0 on success; any failure exits non-zero with the reason.
const mqtt = require("mqtt");
const url = process.argv[2];
const version = Number(process.argv[3] || 4);
const topic = "node/" + Math.random().toString(16).slice(2);
const client = mqtt.connect(url, { protocolVersion: version, reconnectPeriod: 0, connectTimeout: 5000 });
const fail = (why) => { console.error("FAIL " + why); process.exit(1); };
setTimeout(() => fail("timeout"), 8000);
client.on("error", (err) => fail("error " + err.message));
client.on("connect", () => {
  client.subscribe(topic, { qos: 1 }, (err) => {
    if (err) fail("subscribe " + err.message);
    client.publish(topic, "hello from mqtt.js", { qos: 1 });
  });
});
client.on("message", (t, payload) => {
  console.log("GOT " + t + " " + payload.toString());
  client.end(false, () => process.exit(0));
});
