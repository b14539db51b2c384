"""Pretraining: methods (Mockingjay, TERA, Audio ALBERT, APC, VQ-APC, NPC, DistilHuBERT) on a
folder of audio, through the shared training loop; the result loads with ``load_upstream``."""
