"""Blocks shared by the lip-sync family (Wav2Lip and its GAN variant, the SyncNet expert,
EmoGen, LipGAN): conv-BN-ReLU blocks, the mel audio encoder, the expert, the visual-quality
discriminator, the face-crop inference pipeline and the window data for training."""
