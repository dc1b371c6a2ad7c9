"""Policy bundles: self-describing ONNX export and validated loading."""

from robot_ac.policy.bundle import Bundle, BundleError, export_bundle, load_bundle

__all__ = ["Bundle", "BundleError", "export_bundle", "load_bundle"]
