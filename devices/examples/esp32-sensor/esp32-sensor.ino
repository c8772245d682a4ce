// ESP32 sensor for Tributary (Arduino core for ESP32 + PubSubClient).
//
// Every 5 s publishes {"device","metric","value","seq"} to sensor-data/<id>/temperature
// (log topic "sensor-data", key = the MQTT topic), keeps a retained status/<id>
// ("online", last will "offline"), and prints commands received on commands/<id>/#.
#include <WiFi.h>
#include <PubSubClient.h>

const char* WIFI_SSID = "your-ssid";
const char* WIFI_PASSWORD = "your-password";
const char* MQTT_HOST = "192.168.1.10";  // the machine running `tributary start --host 0.0.0.0`
const uint16_t MQTT_PORT = 1883;

WiFiClient net;
PubSubClient mqtt(net);
char deviceId[24];
char statusTopic[48];
char dataTopic[64];
char commandTopic[48];
uint32_t seq = 0;
unsigned long lastReading = 0;

void onCommand(char* topic, byte* payload, unsigned int length) {
  Serial.printf("command %s: %.*s\n", topic, (int)length, (const char*)payload);
}

void connectMqtt() {
  while (!mqtt.connected()) {
    // clean session = false: commands published while the device slept are replayed
    // from the log at reconnect (QoS 1 subscription).
    if (mqtt.connect(deviceId, nullptr, nullptr, statusTopic, 1, true, "offline", false)) {
      mqtt.publish(statusTopic, "online", true);
      mqtt.subscribe(commandTopic, 1);
    } else {
      Serial.printf("mqtt connect failed, state %d; retrying\n", mqtt.state());
      delay(2000);
    }
  }
}

void setup() {
  Serial.begin(115200);
  snprintf(deviceId, sizeof deviceId, "esp32-%06llx", ESP.getEfuseMac() & 0xffffff);
  snprintf(statusTopic, sizeof statusTopic, "status/%s", deviceId);
  snprintf(dataTopic, sizeof dataTopic, "sensor-data/%s/temperature", deviceId);
  snprintf(commandTopic, sizeof commandTopic, "commands/%s/#", deviceId);
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  mqtt.setServer(MQTT_HOST, MQTT_PORT);
  mqtt.setKeepAlive(30);
  mqtt.setCallback(onCommand);
}

void loop() {
  connectMqtt();
  mqtt.loop();
  if (millis() - lastReading >= 5000) {
    lastReading = millis();
    float celsius = temperatureRead();  // the ESP32's internal sensor; replace with yours
    char payload[128];
    snprintf(payload, sizeof payload, "{\"device\":\"%s\",\"metric\":\"temperature\",\"value\":%.2f,\"seq\":%lu}", deviceId, celsius, (unsigned long)seq++);
    mqtt.publish(dataTopic, payload);  // PubSubClient publishes at QoS 0
  }
}
