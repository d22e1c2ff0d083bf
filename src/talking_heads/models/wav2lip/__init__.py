"""Wav2Lip (Prajwal et al., ACM MM 2020): lip-sync with a pre-trained SyncNet expert, and its
GAN variant with the visual-quality discriminator."""
