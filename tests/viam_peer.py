"""A remote part served by Viam's own Python SDK (viam-sdk), for the remote-capture tests.

Run as ``python tests/viam_peer.py PORT``: serves on 127.0.0.1:PORT a sensor, a
board, a camera, a movement sensor and a vision service whose answers are the
fixed values below (the tests import them from here). Every answer that can
carries whether the request said ``extra = {"fromDataManagement": true}``.
"""

from __future__ import annotations

import asyncio
import io
import sys
from typing import Any

# --- the values the remote answers ----------------------------------------------------

READINGS = {"temperature_c": 21.5, "label": "lab", "ok": True}
ANALOG = {"value": 1234, "min_range": 0.0, "max_range": 3.25, "step_size": 0.5}
GPIO_HIGH = {"27": True, "28": False}
POSITION = {"coordinate": {"latitude": 40.5, "longitude": -73.25}, "altitude_m": 12.5}
LINEAR_VELOCITY = {"x": 1.5, "y": 0.0, "z": -0.25}
ANGULAR_VELOCITY = {"x": 0.0, "y": 0.0, "z": 15.0}
LINEAR_ACCELERATION = {"x": 0.0, "y": -0.5, "z": 9.75}
COMPASS_HEADING = 123.5
ORIENTATION = {"o_x": 0.0, "o_y": 0.0, "o_z": 1.0, "theta": 45.0}
POINT_CLOUD = b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 0\n"
IMAGE_SIZE = (40, 20)
# CaptureAllFromCamera: (x_min, y_min, x_max, y_max, confidence, class_name)
DETECTIONS = [(4, 2, 12, 10, 0.9, "red"), (0, 0, 40, 20, 0.2, "faint")]
CLASSIFICATIONS = [("cat", 0.75), ("dog", 0.1)]


def jpeg_frame() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", IMAGE_SIZE, (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def png_frame() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", IMAGE_SIZE, (30, 200, 30)).save(out, format="PNG")
    return out.getvalue()


# --- the SDK resources ------------------------------------------------------------------


def build_resources() -> list[Any]:
    from viam.components.board import Board
    from viam.components.camera import Camera
    from viam.components.movement_sensor import MovementSensor
    from viam.components.sensor import Sensor
    from viam.media.video import CameraMimeType, NamedImage, ViamImage
    from viam.proto.common import GeoPoint, Orientation, ResponseMetadata, Vector3
    from viam.proto.service.vision import Classification, Detection
    from viam.services.vision import CaptureAllResult, Vision

    def from_dm(extra: Any) -> bool:
        return bool((extra or {}).get("fromDataManagement"))

    class PeerSensor(Sensor):
        async def get_readings(self, *, extra=None, timeout=None, **kwargs):
            return {**READINGS, "from_dm": from_dm(extra)}

        async def do_command(self, command, *, timeout=None, **kwargs):
            return {"echo": command, "sensor": self.name}

    class PeerAnalog(Board.Analog):
        async def read(self, *, extra=None, timeout=None, **kwargs):
            return Board.Analog.Value(**ANALOG)

        async def write(self, value, *, extra=None, timeout=None, **kwargs):
            raise NotImplementedError

    class PeerPin(Board.GPIOPin):
        async def get(self, *, extra=None, timeout=None, **kwargs):
            return GPIO_HIGH[self.name]

        async def set(self, high, *, extra=None, timeout=None, **kwargs):
            raise NotImplementedError

        async def get_pwm(self, *, extra=None, timeout=None, **kwargs):
            return 0.0

        async def set_pwm(self, duty_cycle, *, extra=None, timeout=None, **kwargs):
            raise NotImplementedError

        async def get_pwm_frequency(self, *, extra=None, timeout=None, **kwargs):
            return 0

        async def set_pwm_frequency(self, frequency, *, extra=None, timeout=None, **kwargs):
            raise NotImplementedError

    class PeerBoard(Board):
        async def analog_by_name(self, name):
            return PeerAnalog(name)

        async def digital_interrupt_by_name(self, name):
            raise NotImplementedError

        async def gpio_pin_by_name(self, name):
            return PeerPin(name)

        async def set_power_mode(self, mode, duration=None, *, timeout=None, **kwargs):
            raise NotImplementedError

        async def stream_ticks(self, interrupts, *, timeout=None, **kwargs):
            raise NotImplementedError

    class PeerCamera(Camera):
        async def get_images(self, *, filter_source_names=None, extra=None, timeout=None, **kw):
            images = [
                NamedImage("color", png_frame(), CameraMimeType.PNG),
                NamedImage("mono", jpeg_frame(), CameraMimeType.JPEG),
            ]
            return images, ResponseMetadata()

        async def get_point_cloud(self, *, extra=None, timeout=None, **kwargs):
            return POINT_CLOUD, "pointcloud/pcd"

        async def get_properties(self, *, timeout=None, **kwargs):
            return Camera.Properties(supports_pcd=True)

    class PeerMovementSensor(MovementSensor):
        async def get_position(self, *, extra=None, timeout=None, **kwargs):
            c = POSITION["coordinate"]
            return GeoPoint(latitude=c["latitude"], longitude=c["longitude"]), POSITION[
                "altitude_m"
            ]

        async def get_linear_velocity(self, *, extra=None, timeout=None, **kwargs):
            return Vector3(**LINEAR_VELOCITY)

        async def get_angular_velocity(self, *, extra=None, timeout=None, **kwargs):
            return Vector3(**ANGULAR_VELOCITY)

        async def get_linear_acceleration(self, *, extra=None, timeout=None, **kwargs):
            return Vector3(**LINEAR_ACCELERATION)

        async def get_compass_heading(self, *, extra=None, timeout=None, **kwargs):
            return COMPASS_HEADING

        async def get_orientation(self, *, extra=None, timeout=None, **kwargs):
            return Orientation(**ORIENTATION)

        async def get_properties(self, *, extra=None, timeout=None, **kwargs):
            return MovementSensor.Properties()

        async def get_accuracy(self, *, extra=None, timeout=None, **kwargs):
            return MovementSensor.Accuracy()

        async def get_readings(self, *, extra=None, timeout=None, **kwargs):
            return {"compass": COMPASS_HEADING, "from_dm": from_dm(extra)}

    class PeerVision(Vision):
        def _detections(self) -> list[Any]:
            return [
                Detection(x_min=a, y_min=b, x_max=c, y_max=d, confidence=conf, class_name=label)
                for a, b, c, d, conf, label in DETECTIONS
            ]

        def _classifications(self) -> list[Any]:
            return [Classification(class_name=n, confidence=c) for n, c in CLASSIFICATIONS]

        async def capture_all_from_camera(self, camera_name, return_image=False,
                                          return_classifications=False, return_detections=False,
                                          return_object_point_clouds=False,
                                          return_detections_3d=False, *, extra=None,
                                          timeout=None, **kwargs):  # fmt: skip
            if camera_name != "cam" or not from_dm(extra):
                raise ValueError(f"unexpected camera {camera_name!r} or extra {extra!r}")
            return CaptureAllResult(
                image=ViamImage(jpeg_frame(), CameraMimeType.JPEG) if return_image else None,
                detections=self._detections() if return_detections else None,
                classifications=self._classifications() if return_classifications else None,
            )

        async def get_detections_from_camera(self, camera_name, *, extra=None, timeout=None,
                                             **kwargs):  # fmt: skip
            return self._detections()

        async def get_detections(self, image, *, extra=None, timeout=None, **kwargs):
            return self._detections()

        async def get_classifications_from_camera(self, camera_name, count, *, extra=None,
                                                  timeout=None, **kwargs):  # fmt: skip
            return self._classifications()[:count]

        async def get_classifications(self, image, count, *, extra=None, timeout=None, **kw):
            return self._classifications()[:count]

        async def get_object_point_clouds(self, camera_name, *, extra=None, timeout=None, **kw):
            return []

        async def get_detections_3d(self, camera_name, *, extra=None, timeout=None, **kw):
            return []

        async def get_properties(self, *, extra=None, timeout=None, **kwargs):
            return Vision.Properties(classifications_supported=True, detections_supported=True)

    return [
        PeerSensor("thermo"),
        PeerBoard("esp32"),
        PeerCamera("cam"),
        PeerMovementSensor("gps"),
        PeerVision("detector"),
    ]


def main() -> None:
    from viam.rpc.server import Server

    async def serve(port: int) -> None:  # the server must be made inside the loop
        await Server(build_resources()).serve(host="127.0.0.1", port=port, log_level=None)

    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
