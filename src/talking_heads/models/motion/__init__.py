"""Blocks shared by the FOMM lineage (FOMM, MRAA, TPSM, DaGAN, face-vid2vid)."""
