"""The link to the arm firmware: wire protocol, serial transport, `ArmLink` client, firmware simulators.

Imports nothing of harmowam_edge, export or calibration (design §2).
"""
