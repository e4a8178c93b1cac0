"""The demo data set: realistic multi-channel customer histories sent through the one write path."""

from threadline.demo.load import DemoReport, generate_demo
from threadline.demo.personas import LOCALES

__all__ = ["LOCALES", "DemoReport", "generate_demo"]
