"""Where ``run`` puts what it sees: annotated images and videos per source (atomic, never onto an
input), and the live window."""

from __future__ import annotations

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import atomic_path, discard, temp_path

WINDOW = "higherhrnet-trt"


def _save_dirs(save_dir: str | None, count: int) -> list[str | None]:
    """Where each source's annotated images / video go: --save-dir itself for one source,
    DIR/source0, DIR/source1, ... for several (two cameras both named 'stream', or two folders
    with an img_001.jpg each, never share a file)."""
    import os

    if not save_dir:
        return [None] * count
    if count == 1:
        return [save_dir]
    return [os.path.join(save_dir, f"source{k}") for k in range(count)]


def _write_image(cv2, path: str, image) -> bool:
    """Encode with OpenCV, write with Python under a temporary name, renamed when complete.

    False when OpenCV cannot encode it; a failed write (disk full) raises the OSError, with the
    temporary file removed (Python writes any file name, imwrite crashed on names that are not
    UTF-8, and reported a full disk as success).
    """
    import os

    try:
        ok, data = cv2.imencode(os.path.splitext(path)[1] or ".jpg", image)
    except cv2.error:
        ok = False
    if not ok:
        return False
    with atomic_path(path) as tmp:  # folders made: names keep sub-folders
        with open(tmp, "wb") as f:
            f.write(data.tobytes())
    return True


class _Outputs:
    """Annotated images or a video under --save-dir (checked against the inputs beforehand by
    :func:`_check_outputs`); each file appears under its name only complete."""

    def __init__(self, save_dir: str | None, source, cv2) -> None:
        import os

        self.cv2 = cv2
        self.dir = save_dir
        self.source = source
        self.video = None
        self.video_path: str | None = None
        self.video_temp: str | None = None  # where the video is written until close()
        self.images = 0
        self.failed: list[str] = []
        if save_dir:
            os.makedirs(save_dir, exist_ok=True)

    def write(self, frame, image) -> None:
        import os

        if not self.dir:
            return
        cv2 = self.cv2
        if frame.path is not None:  # image sources: same name (sub-folders kept, see Frame.name)
            path = os.path.join(self.dir, frame.name)
            if _write_image(cv2, path, image):
                self.images += 1
            else:
                self.failed.append(path)
            return
        if self.video is None:
            self._open_video(image)
        h, w = self.video_size[1], self.video_size[0]
        if image.shape[:2] != (h, w):  # a stream that changed resolution after a reconnect
            image = cv2.resize(image, (w, h))
        self.video.write(image)
        self.images += 1
        if not self.video.isOpened():
            raise UserError(f"writing {self.video_path} failed (disk full?)")

    def _open_video(self, image) -> None:
        import os

        cv2 = self.cv2
        name = getattr(self.source, "name", "video")
        fps = self.source.fps or 30.0
        size = (image.shape[1], image.shape[0])
        _need_space(self.dir, image.nbytes)  # a full disk opens no mp4 and then writes 0-byte avis
        src_path = os.path.abspath(self.source.path) if getattr(self.source, "path", None) else None
        for ext, fourcc in ((".mp4", "mp4v"), (".avi", "MJPG")):
            path = os.path.join(self.dir, name + ext)
            if os.path.abspath(path) == src_path:
                path = os.path.join(self.dir, name + "_pose" + ext)
            tmp = temp_path(path)  # renamed in close(), once the index is written
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), fps, size)
            if writer.isOpened():
                self.video, self.video_path, self.video_size = writer, path, size
                self.video_temp = tmp
                return
            writer.release()
            discard(tmp)
        raise UserError(f"cannot write a video to {self.dir}: this OpenCV has neither an mp4v nor "
                        "an MJPG encoder (or the folder is not writable)")

    def close(self) -> None:
        """Finish the video (release writes the mp4 index), check it by reading its frame count
        back, and give it its name; a video short of frames (disk full) is removed and raises."""
        import os

        if self.video is not None:
            video, self.video = self.video, None
            video.release()
            try:
                self._check_video(self.video_temp)
            except BaseException:
                discard(self.video_temp)
                raise
            os.replace(self.video_temp, self.video_path)

    def _check_video(self, tmp: str) -> None:
        """OSError(ENOSPC) or UserError unless ``tmp`` reads back with every frame written."""
        import errno
        import os

        cap = self.cv2.VideoCapture(tmp)
        try:
            frames = int(cap.get(self.cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        finally:
            cap.release()
        if frames >= self.images > 0:
            return
        if _free_bytes(self.dir) < 2**20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.video_path)
        raise UserError(f"writing {self.video_path} failed: it reads back with {frames} of the "
                        f"{self.images} frames written (is the disk full or failing?)")


def _free_bytes(folder: str) -> int:
    """Bytes an unprivileged writer may still use on ``folder``'s filesystem."""
    import os

    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def _need_space(folder: str, nbytes: int) -> None:
    """OSError(ENOSPC) naming ``folder`` when its filesystem has under ``nbytes`` free."""
    import errno
    import os

    if _free_bytes(folder) < nbytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), folder)


def _open_window(cv2) -> None:
    import os
    import sys

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or
                                                  os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("--show needs a display and none is set (DISPLAY is empty): run on the robot's "
                        "screen or over 'ssh -X', or use --save-dir instead of --show")
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error:
        raise UserError("--show: this OpenCV has no GUI support (opencv-python-headless?): install "
                        "opencv-python or use the system OpenCV, or use --save-dir instead") from None


def _window_closed(cv2, name: str = WINDOW) -> bool:
    """True when the user pressed q / Esc or closed the window ``name``."""
    key = cv2.waitKey(1) & 0xFF
    if key in (ord("q"), 27):
        return True
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return True
