"""xenlive: build bootable Xen live ISOs from declarative YAML recipes."""

__version__ = "0.1.0"
