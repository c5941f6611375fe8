"""ROS 2 integration: ``higherhrnet-trt ros2`` (cli.py), the node (node.py), message conversions
(messages.py) and a test publisher / listener (probe.py).

rclpy and the message packages are the ``ros`` extra, or come from a sourced ROS 2 install; nothing
here imports them until the node or the probe runs.
"""
