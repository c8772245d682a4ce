#!/usr/bin/env python3
"""A Tributary sensor in Python (paho-mqtt 1.x or 2.x).

Publishes a JSON temperature reading every second to sensor-data/<device>/temperature
(QoS 1), keeps a retained status/<device> ("online", or "offline" as its last will), and
prints commands sent to commands/<device>/#.

    pip install paho-mqtt
    python3 sensor.py --host 127.0.0.1 --port 1883 --device d42
"""
import argparse
import json
import math
import time

import paho.mqtt.client as mqtt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--device", default="d42")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()

    try:  # paho-mqtt 2.x
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=args.device, clean_session=False)
    except AttributeError:  # paho-mqtt 1.x
        client = mqtt.Client(client_id=args.device, clean_session=False)

    status = f"status/{args.device}"
    client.will_set(status, "offline", qos=1, retain=True)

    def on_connect(client, userdata, flags, *rest):
        print("connected", flags)
        client.publish(status, "online", qos=1, retain=True)
        # persistent session (clean_session=False): commands sent while we were away are
        # replayed from the log when we come back
        client.subscribe(f"commands/{args.device}/#", qos=1)

    def on_message(client, userdata, msg):
        print(f"command {msg.topic}: {msg.payload.decode(errors='replace')}")

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=30)
    client.loop_start()
    seq = 0
    try:
        while True:
            reading = {"device": args.device, "metric": "temperature", "value": round(21 + 3 * math.sin(seq / 10), 2), "seq": seq, "ts": int(time.time() * 1000)}
            client.publish(f"sensor-data/{args.device}/temperature", json.dumps(reading), qos=1)
            seq += 1
            time.sleep(args.interval)
    except KeyboardInterrupt:
        client.publish(status, "offline", qos=1, retain=True).wait_for_publish()
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    main()
