"""A GStreamer RTSP server on 127.0.0.1 for the stream tests (gst-rtsp-server through PyGObject).

    python tests/rtsp_server.py --image runtime/assets/sample.jpg [--fps 10] [--port 0]

Serves rtsp://127.0.0.1:PORT/live: the image, repeated at --fps (--frames times, or endlessly),
as H.264 (x264, lossless: quantizer 0, so every decoded frame is the same picture and a
client's frames can be compared with the frame OpenCV decodes). Prints ``PORT <n>`` on stdout
once it listens, then serves until killed. Needs python3-gi, gir1.2-gst-rtsp-server-1.0 and
GStreamer's base, good and ugly plugins (Debian; ``make gstreamer`` installs them).
"""

from __future__ import annotations

import argparse
import sys


def launch_line(image: str, fps: int, frames: int = 0) -> str:
    """The media pipeline: JPEG file -> the picture repeated at ``fps`` (``frames`` times, then the
    end of the stream; 0: endless) -> raw I420 -> lossless H.264 -> RTP (pay0)."""
    count = f" num-buffers={frames}" if frames > 0 else ""
    return (
        f"( multifilesrc location={image} loop=true{count} caps=image/jpeg,framerate={fps}/1 ! "
        "jpegdec ! videoconvert ! video/x-raw,format=I420 ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast quantizer=0 pass=qual key-int-max={fps} ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", required=True, help="JPEG image to stream")
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--frames", type=int, default=0, help="end the stream after this many (0: never)")
    args = ap.parse_args()

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args.image, args.fps, args.frames))
    factory.set_shared(True)  # clients that reconnect join the one running pipeline
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        print("cannot listen", file=sys.stderr)
        return 1
    print(f"PORT {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
